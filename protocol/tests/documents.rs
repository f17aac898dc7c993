//! Receipt text of every kind, and the checks a received document must pass.

use protocol::{
    ChainHash, Document, DocumentBody, DocumentError, DocumentNumber, Item, Money, ReceiptHeader, ShiftNumber,
    ShiftReport, Summary, Tenders, Uid, receipt_text,
};

fn m(s: &str) -> Money {
    s.parse().unwrap()
}

fn header() -> ReceiptHeader {
    ReceiptHeader {
        org_name: "Торговое частное унитарное предприятие \"АВТО-КОМБИ\"".into(),
        unp: "100231650".parse().unwrap(),
        reg_number: "119026501".parse().unwrap(),
    }
}

fn uid() -> Uid {
    Uid::new(&ChainHash([0xAB; 32]), "119026501".parse().unwrap())
}

fn document(number: u64, at: &str, body: DocumentBody) -> Document {
    Document {
        number: DocumentNumber(number),
        shift: ShiftNumber(71),
        created_at: chrono::DateTime::parse_from_rfc3339(at).unwrap(),
        cashier: "Иванов".into(),
        body,
    }
}

fn chocolate() -> Item {
    Item {
        name: "Шоколад".into(),
        gtin: Some("3702760306879".into()),
        section: 3,
        price: m("4.79"),
        quantity: "1.000".parse().unwrap(),
    }
}

fn check(doc: &Document, expected: &str) {
    let text = receipt_text(&header(), doc, &uid());
    let head = "Торговое частное унитарное предприятие \"АВТО-КОМБИ\"\nУНП 100231650 РН СККО 119026501\n";
    assert_eq!(text, format!("{head}{expected}\nУИ ABABABABABABABAB07183345"));
}

#[test]
fn payment_with_mixed_tenders_prints_only_the_non_zero_ones() {
    let weighed =
        Item { name: "Сыр".into(), gtin: None, section: 1, price: m("19.99"), quantity: "0.250".parse().unwrap() };
    let tenders = Tenders { cash: m("0.00"), card: m("3.29"), other: m("6.50") };
    let doc = document(
        4324,
        "2024-10-11T15:31:58+03:00",
        DocumentBody::Payment { items: vec![chocolate(), weighed], tenders },
    );
    doc.check().unwrap();
    check(
        &doc,
        "ПЛАТЕЖНЫЙ ДОКУМЕНТ\nN док. 4324\nШоколад\n3702760306879\n3 Секция 4.79 *1.000 =4.79\nСыр\n1 Секция 19.99 *0.250 =5.00\n\
         ИТОГО 9.79\nИТОГО К ОПЛАТЕ 9.79\nБЕЗНАЛИЧНЫМИ 3.29\nИНЫМИ 6.50\nКассир Иванов 11.10.2024 15:31:58",
    );
}

#[test]
fn return_names_its_payment() {
    let body = DocumentBody::Return {
        ref_number: Some(DocumentNumber(4320)),
        items: vec![chocolate()],
        tenders: Tenders::cash(m("4.79")),
    };
    check(
        &document(4325, "2024-10-11T15:32:25+03:00", body),
        "ВОЗВРАТ\nN док. 4325\nК ПЛАТЕЖНОМУ ДОКУМЕНТУ N 4320\nШоколад\n3702760306879\n3 Секция 4.79 *1.000 =4.79\n\
         ИТОГО 4.79\nИТОГО К ВЫПЛАТЕ 4.79\nНАЛИЧНЫМИ 4.79\nКассир Иванов 11.10.2024 15:32:25",
    );
}

#[test]
fn annulment_names_the_annulled_payment() {
    let body = DocumentBody::Annulment { ref_number: DocumentNumber(4322), tenders: Tenders::cash(m("4.79")) };
    check(
        &document(4323, "2024-10-11T15:31:10+03:00", body),
        "АННУЛИРОВАНИЕ\nN док. 4323\nАННУЛИРОВАН ПЛАТЕЖНЫЙ ДОКУМЕНТ N 4322\nИТОГО 4.79\nНАЛИЧНЫМИ 4.79\n\
         Кассир Иванов 11.10.2024 15:31:10",
    );
}

#[test]
fn cash_documents_are_not_payment_documents() {
    let cases = [
        (DocumentBody::CashIn { amount: m("50.00") }, "ДОКУМЕНТ ВНЕСЕНИЯ"),
        (DocumentBody::CashOut { amount: m("25.00") }, "ДОКУМЕНТ ИЗЪЯТИЯ"),
        (DocumentBody::Payout { amount: m("25.00") }, "ДОКУМЕНТ ВЫДАЧИ"),
    ];
    for (body, title) in cases {
        let amount = body.figures().total;
        check(
            &document(4326, "2024-10-11T15:32:38+03:00", body),
            &format!(
                "НЕ ЯВЛЯЕТСЯ ПЛАТЕЖНЫМ ДОКУМЕНТОМ\n{title}\nN док. 4326\nСУММА {amount}\nКассир Иванов 11.10.2024 15:32:38"
            ),
        );
    }
}

#[test]
fn shift_report_prints_counts_totals_revenue_and_cumulative_total() {
    let mut shift = Summary::default();
    shift.add_body(&DocumentBody::CashIn { amount: m("50.00") });
    shift.add_body(&DocumentBody::Payment { items: vec![], tenders: Tenders::cash(m("9.58")) });
    shift.add_body(&DocumentBody::Payment {
        items: vec![],
        tenders: Tenders { card: m("2.79"), other: m("2.00"), ..Tenders::ZERO },
    });
    shift.add_body(&DocumentBody::Return { ref_number: None, items: vec![], tenders: Tenders::cash(m("4.79")) });
    let opened_at = chrono::DateTime::parse_from_rfc3339("2024-10-11T15:04:05+03:00").unwrap();
    let report = ShiftReport::new(opened_at, &shift, m("93692.58"));
    let doc = document(71, "2024-10-11T15:32:43+03:00", DocumentBody::ShiftReport(report));
    doc.check().unwrap();
    assert_eq!(doc.figures().total, m("14.37"));
    check(
        &doc,
        "НЕ ЯВЛЯЕТСЯ ПЛАТЕЖНЫМ ДОКУМЕНТОМ\nСМЕННЫЙ ОТЧЕТ\nСмена N 71\nОткрыта 11.10.2024 15:04:05\n\
         Платежный документ: 2 на сумму 14.37\nНАЛИЧНЫМИ 9.58\nБЕЗНАЛИЧНЫМИ 2.79\nИНЫМИ 2.00\n\
         Возврат: 1 на сумму 4.79\nАннулирование: 0 на сумму 0.00\nВнесение: 1 на сумму 50.00\n\
         Изъятие: 0 на сумму 0.00\nВыдача: 0 на сумму 0.00\n\
         ВЫРУЧКА 9.58\nНАЛИЧНЫМИ 4.79\nБЕЗНАЛИЧНЫМИ 2.79\nИНЫМИ 2.00\nНАКОПИТЕЛЬНЫЙ ИТОГ 93706.95\n\
         Кассир Иванов 11.10.2024 15:32:43",
    );
}

#[test]
fn received_documents_are_checked_with_a_reason() {
    let at = "2024-10-11T15:04:50+03:00";
    let payment = |items: Vec<Item>, tenders| document(1, at, DocumentBody::Payment { items, tenders });
    let cases = [
        (
            payment(vec![chocolate()], Tenders::cash(m("4.80"))),
            DocumentError::TendersMismatch { tenders: m("4.80"), items: m("4.79") },
        ),
        (payment(vec![], Tenders::ZERO), DocumentError::NoItems),
        (
            payment(vec![Item { name: " ".into(), ..chocolate() }], Tenders::cash(m("4.79"))),
            DocumentError::ItemName { line: 1 },
        ),
        (
            payment(vec![chocolate(), Item { gtin: Some("12AB5678".into()), ..chocolate() }], Tenders::cash(m("9.58"))),
            DocumentError::Gtin { line: 2 },
        ),
        (payment(vec![Item { price: m("0"), ..chocolate() }], Tenders::ZERO), DocumentError::ZeroTotal),
        (document(1, at, DocumentBody::CashIn { amount: m("0") }), DocumentError::ZeroTotal),
        (
            document(1, at, DocumentBody::CashIn { amount: m("1000000000000.01") }),
            DocumentError::TooLarge(m("1000000000000.01")),
        ),
        (
            payment(
                vec![Item { price: m("999999999999999"), quantity: "999999".parse().unwrap(), ..chocolate() }],
                Tenders::cash(m("1")),
            ),
            DocumentError::TooLarge(protocol::line_sum(m("999999999999999"), "999999".parse().unwrap())),
        ),
        (
            Document { cashier: String::new(), ..document(1, at, DocumentBody::CashIn { amount: m("1") }) },
            DocumentError::Cashier,
        ),
        (
            Document { cashier: "я".repeat(129), ..document(1, at, DocumentBody::CashIn { amount: m("1") }) },
            DocumentError::Cashier,
        ),
    ];
    for (doc, expected) in cases {
        let err = doc.check().unwrap_err();
        assert_eq!(err, expected);
        assert!(!err.to_string().is_empty());
    }
    let mut report = ShiftReport::new(chrono::DateTime::parse_from_rfc3339(at).unwrap(), &Summary::default(), m("1"));
    report.tenders.cash = m("1.00");
    let err = document(71, at, DocumentBody::ShiftReport(report)).check().unwrap_err();
    assert_eq!(err, DocumentError::ReportMismatch { tenders: m("1.00"), payments: m("0.00") });
}
