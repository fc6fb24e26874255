import Foundation

/// Paths inside this repository, found from this source file's location.
public enum RepoPaths {
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/TestSupport/RepoPaths.swift
        return url.path
    }()

    public static var migrations: String { root + "/migrations" }
}
