//! Properties of the arithmetic, the money type and the chain, over random inputs.

use proptest::prelude::*;
use protocol::{
    ChainHead, DocumentBody, DocumentKind, DocumentNumber, Entry, Money, SignedMoney, Standing, Summary, Tenders,
    verify_chain,
};

/// The largest amount generated, in kopecks: within `Money`'s 15 integer digits.
const MAX_KOPECKS: u64 = 99_999_999_999_999_999;

fn money(kopecks: u64) -> Money {
    Money::from_kopecks(kopecks)
}

fn kopecks_of(m: SignedMoney) -> i128 {
    let d = m.as_decimal();
    assert_eq!(d.scale(), 2, "{d} keeps two fractional digits");
    d.mantissa()
}

fn tenders() -> impl Strategy<Value = Tenders> {
    (0..100_000u64, 0..100_000u64, 0..100_000u64).prop_map(|(a, b, c)| Tenders {
        cash: money(a),
        card: money(b),
        other: money(c),
    })
}

fn body() -> impl Strategy<Value = DocumentBody> {
    prop_oneof![
        tenders().prop_map(|tenders| DocumentBody::Payment { items: vec![], tenders }),
        tenders().prop_map(|tenders| DocumentBody::Return { ref_number: None, items: vec![], tenders }),
        tenders().prop_map(|tenders| DocumentBody::Annulment { ref_number: DocumentNumber(1), tenders }),
        (1..100_000u64).prop_map(|k| DocumentBody::CashIn { amount: money(k) }),
        (1..100_000u64).prop_map(|k| DocumentBody::CashOut { amount: money(k) }),
        (1..100_000u64).prop_map(|k| DocumentBody::Payout { amount: money(k) }),
    ]
}

fn documents() -> impl Strategy<Value = Vec<(DocumentBody, Standing)>> {
    prop::collection::vec((body(), prop_oneof![4 => Just(Standing::Counted), 1 => Just(Standing::Refused)]), 0..60)
}

fn summarize(documents: &[(DocumentBody, Standing)]) -> Summary {
    let mut summary = Summary::default();
    for (body, standing) in documents {
        summary.add(body.kind(), &body.figures(), *standing);
    }
    summary
}

fn tender_kopecks(t: &Tenders) -> [i128; 3] {
    [t.cash, t.card, t.other].map(|m| kopecks_of(m.into()))
}

proptest! {
    #[test]
    fn revenue_is_payments_minus_returns_minus_annulments_and_its_total_is_its_rows(docs in documents()) {
        let summary = summarize(&docs);
        // Computed independently, in integer kopecks.
        let mut expected = [0i128; 3];
        for (body, standing) in &docs {
            if *standing == Standing::Refused { continue; }
            let sign = match body {
                DocumentBody::Payment { .. } => 1,
                DocumentBody::Return { .. } | DocumentBody::Annulment { .. } => -1,
                _ => 0,
            };
            if let Some(t) = body.figures().tenders {
                for (e, k) in expected.iter_mut().zip(tender_kopecks(&t)) { *e += sign * k; }
            }
        }
        let revenue = summary.revenue();
        prop_assert_eq!([kopecks_of(revenue.cash), kopecks_of(revenue.card), kopecks_of(revenue.other)], expected);

        // As shown: ИТОГО equals the sum of the three rows.
        let json = serde_json::to_value(summary).unwrap();
        let row = |name: &str| json["revenue"][name].as_str().unwrap().parse::<SignedMoney>().unwrap();
        prop_assert_eq!(row("total"), row("cash") + row("card") + row("other"));
        prop_assert_eq!(kopecks_of(row("total")), expected.iter().sum::<i128>());
    }

    #[test]
    fn kind_counts_and_totals_count_only_accepted_documents(docs in documents()) {
        let summary = summarize(&docs);
        for kind in DocumentKind::ALL {
            let counted: Vec<_> = docs.iter().filter(|(b, s)| b.kind() == kind && *s == Standing::Counted).collect();
            let totals = summary.kind(kind);
            prop_assert_eq!(totals.count, counted.len() as u64);
            let total: i128 = counted.iter().map(|(b, _)| kopecks_of(b.figures().total.into())).sum();
            prop_assert_eq!(kopecks_of(totals.total.into()), total);
        }
    }

    #[test]
    fn summary_of_joined_lists_is_the_sum_of_their_summaries(a in documents(), b in documents()) {
        let joined: Vec<_> = a.iter().chain(&b).cloned().collect();
        prop_assert_eq!(summarize(&joined), summarize(&a) + summarize(&b));
    }

    #[test]
    fn money_never_loses_a_kopeck(kopecks in 0..=MAX_KOPECKS, more in prop::collection::vec(0..=1_000_000_000u64, 0..50)) {
        let m = money(kopecks);
        let text = m.to_string();
        prop_assert_eq!(text.parse::<Money>().unwrap(), m);
        prop_assert_eq!(text.replace('.', "").trim_start_matches('0').to_owned(), if kopecks == 0 { String::new() } else { kopecks.to_string() });
        prop_assert_eq!(protocol::wire::decode::<Money>(&protocol::wire::encode(&m), 64).unwrap(), m);
        prop_assert_eq!(serde_json::from_str::<Money>(&serde_json::to_string(&m).unwrap()).unwrap(), m);
        let tenders = Tenders { cash: m, card: money(kopecks / 3), other: money(1) };
        prop_assert_eq!(protocol::wire::decode::<Tenders>(&protocol::wire::encode(&tenders), 256).unwrap(), tenders);

        let sum: Money = more.iter().map(|&k| money(k)).sum();
        prop_assert_eq!(kopecks_of(sum.into()), more.iter().map(|&k| i128::from(k)).sum::<i128>());
    }

    #[test]
    fn chain_verifier_finds_any_single_altered_byte(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..12),
        which in any::<prop::sample::Index>(),
        offset in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let mut head = ChainHead::EMPTY;
        let mut entries: Vec<Entry> = payloads.into_iter().map(|p| {
            let e = Entry::after(&head, p);
            head = ChainHead { seq: e.seq, hash: e.hash };
            e
        }).collect();
        prop_assert_eq!(verify_chain(ChainHead::EMPTY, &entries), Ok(head));

        let victim = which.index(entries.len());
        let entry = &mut entries[victim];
        let len = 64 + entry.payload.len();
        match offset.index(len) {
            i if i < 32 => entry.prev_hash.0[i] ^= flip,
            i if i < 64 => entry.hash.0[i - 32] ^= flip,
            i => entry.payload[i - 64] ^= flip,
        }
        let err = verify_chain(ChainHead::EMPTY, &entries).unwrap_err();
        prop_assert_eq!(err.seq, entries[victim].seq);
    }
}
