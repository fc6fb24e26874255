import Foundation

extension String {
    /// pg_dump's `ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY ...;` with
    /// NOT VALID added, or nil if it is not one such statement.
    var notValidForeignKey: String? {
        guard hasSuffix(";"), contains(" FOREIGN KEY "), !contains("NOT VALID"),
              filter({ $0 == ";" }).count == 1 else { return nil }
        return String(dropLast()) + " NOT VALID;"
    }
}
