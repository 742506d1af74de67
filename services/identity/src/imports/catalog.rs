//! What can be imported: per record type, the bulk-upsert mutation that writes its rows
//! (`importAccounts`, …, served by the type's own service) and the columns a file may
//! have: the type's input fields, `externalId`, and references to other records by
//! their external ids (`accountExternalId` fills `accountId`).

/// How a column's text becomes the input field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Text as written (names, ids, enum values, dates, decimal amounts as strings).
    Text,
    /// A whole number.
    Int,
    /// A JSON value, from a JSON file only (a contact's `consents`).
    Json,
}

/// One importable record type.
#[derive(Debug)]
pub struct ImportKind {
    /// The API's name for it (`ACCOUNT`).
    pub name: &'static str,
    /// The bulk-upsert mutation and its row input type.
    pub mutation: &'static str,
    pub row_type: &'static str,
    /// The input's fields and how their cells read.
    pub fields: &'static [(&'static str, Cell)],
    /// Reference columns: the column, and the input field it fills.
    pub references: &'static [(&'static str, &'static str)],
}

pub const KINDS: &[ImportKind] = &[
    ImportKind {
        name: "ACCOUNT",
        mutation: "importAccounts",
        row_type: "AccountImportRow",
        fields: &[
            ("name", Cell::Text),
            ("domain", Cell::Text),
            ("industry", Cell::Text),
            ("segment", Cell::Text),
            ("tier", Cell::Text),
            ("lifecycleStage", Cell::Text),
            ("territoryId", Cell::Text),
            ("ownerUserId", Cell::Text),
            ("internalNote", Cell::Text),
        ],
        references: &[("territoryExternalId", "territoryId")],
    },
    ImportKind {
        name: "CONTACT",
        mutation: "importContacts",
        row_type: "ContactImportRow",
        fields: &[
            ("accountId", Cell::Text),
            ("firstName", Cell::Text),
            ("lastName", Cell::Text),
            ("email", Cell::Text),
            ("phone", Cell::Text),
            ("title", Cell::Text),
            ("consents", Cell::Json),
        ],
        references: &[("accountExternalId", "accountId")],
    },
    ImportKind {
        name: "PRODUCT",
        mutation: "importProducts",
        row_type: "ProductImportRow",
        fields: &[
            ("sku", Cell::Text),
            ("name", Cell::Text),
            ("description", Cell::Text),
            ("supplierPartnerId", Cell::Text),
            ("unitPrice", Cell::Text),
            ("currency", Cell::Text),
        ],
        references: &[],
    },
    ImportKind {
        name: "ORDER",
        mutation: "importOrders",
        row_type: "OrderImportRow",
        fields: &[
            ("number", Cell::Text),
            ("accountId", Cell::Text),
            ("status", Cell::Text),
            ("placedAt", Cell::Text),
            ("currency", Cell::Text),
            ("fulfillingDistributorId", Cell::Text),
            ("internalNote", Cell::Text),
        ],
        references: &[],
    },
    ImportKind {
        name: "ORDER_LINE",
        mutation: "importOrderLines",
        row_type: "OrderLineImportRow",
        fields: &[
            ("orderId", Cell::Text),
            ("lineNumber", Cell::Int),
            ("productId", Cell::Text),
            ("quantity", Cell::Int),
            ("unitPrice", Cell::Text),
            ("currency", Cell::Text),
            ("status", Cell::Text),
            ("expectedDate", Cell::Text),
        ],
        references: &[
            ("orderExternalId", "orderId"),
            ("productExternalId", "productId"),
        ],
    },
];

/// The kind named `name` (`ACCOUNT`).
pub fn kind(name: &str) -> Option<&'static ImportKind> {
    KINDS.iter().find(|k| k.name == name)
}

impl ImportKind {
    /// The document that sends one batch of rows as the importer.
    pub fn document(&self) -> String {
        format!(
            "mutation CrmImportBatch($rows: [{row}!]!, $dryRun: Boolean!, $skipDuplicates: Boolean!) \
             {{ batch: {mutation}(rows: $rows, dryRun: $dryRun, skipDuplicates: $skipDuplicates) \
             {{ rows {{ externalId outcome id code field message duplicates }} }} }}",
            row = self.row_type,
            mutation = self.mutation,
        )
    }

    /// Every column a file of this kind may have, for the message that refuses another.
    pub fn columns(&self) -> Vec<&'static str> {
        std::iter::once("externalId")
            .chain(self.fields.iter().map(|(name, _)| *name))
            .chain(self.references.iter().map(|(column, _)| *column))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_found_by_its_name_and_names_its_mutation() {
        for kind in KINDS {
            assert_eq!(
                super::kind(kind.name).map(|k| k.mutation),
                Some(kind.mutation)
            );
            assert!(kind.document().contains(kind.row_type));
            assert!(kind.columns().contains(&"externalId"));
        }
        assert!(super::kind("LEAD").is_none());
    }
}
