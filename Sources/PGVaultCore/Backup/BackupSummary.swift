public struct BackupProgress: Sendable {
    public var unitsDone: Int
    public var unitsTotal: Int
    public var rows: Int64
    public var rawBytes: Int64
    public var compressedBytes: Int64
    public var estimatedBytes: Int64
    public var elapsed: Double
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

    enum CodingKeys: String, CodingKey {
        case status, archive, database, tables, units, rows, rawBytes, archiveBytes, seconds, snapshotTime, walLSN, warnings
    }
}
