import Foundation

public struct BackupProgress: Sendable {
    public var unitsDone: Int
    public var unitsTotal: Int
    public var rows: Int64
    public var rawBytes: Int64
    public var compressedBytes: Int64
    public var estimatedBytes: Int64
    public var elapsed: Double
}

/// Counting, by the workers, under the lock of a `Locked<BackupProgress>`
/// that the progress reporter reads.
extension BackupProgress {
    init(unitsTotal: Int, estimatedBytes: Int64) {
        self.init(unitsDone: 0, unitsTotal: unitsTotal, rows: 0, rawBytes: 0, compressedBytes: 0, estimatedBytes: estimatedBytes, elapsed: 0)
    }

    mutating func add(rows: Int64, rawBytes: Int64) {
        self.rows += rows
        self.rawBytes += rawBytes
    }

    mutating func finishUnit(compressedBytes: Int64) {
        unitsDone += 1
        self.compressedBytes += compressedBytes
    }
}

public struct BackupSummary: Codable, Sendable {
    public var status: String
    public var archive: String
    public var database: String
    public var tables: Int
    public var units: Int
    public var rows: Int64
    public var rawBytes: Int64
    public var archiveBytes: Int64
    public var seconds: Double
    public var snapshotTime: String
    public var walLSN: String
    public var manifest: Manifest?
    /// What went wrong after the archive was complete (a metrics file not written).
    public var warnings: [String]?
    /// Set when the backup read a hot standby: where its replay stood.
    public var standby: Manifest.Standby? = nil
    /// Into a format-2 repository: the units taken unread from the previous
    /// backup because their fingerprints said they had not changed.
    public var unitsUnchanged: Int? = nil

    enum CodingKeys: String, CodingKey {
        case status, archive, database, tables, units, rows, rawBytes, archiveBytes, seconds, snapshotTime, walLSN, warnings, standby, unitsUnchanged
    }
}
