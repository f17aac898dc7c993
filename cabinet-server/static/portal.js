// The portal works without this script; it only opens receipts in a dialog and asks
// before revoking a token.
document.addEventListener("click", async (event) => {
  const link = event.target.closest("a.receipt-link");
  const dialog = document.getElementById("receipt-dialog");
  if (!link || !dialog || !dialog.showModal) return;
  event.preventDefault();
  const response = await fetch(link.href, { credentials: "same-origin" });
  if (!response.ok) { window.location = link.href; return; }
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const card = page.querySelector(".receipt-card");
  dialog.querySelector(".body").replaceChildren(...(card ? [document.importNode(card, true)] : []));
  dialog.showModal();
});
document.addEventListener("click", (event) => {
  if (event.target.matches("#receipt-dialog .close")) event.target.closest("dialog").close();
});
document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
