import Support

/// The `checked n/N: label` progress lines, one as each item finishes, in
/// whatever order the workers finish them.
struct CheckedCount: Sendable {
    let total: Int
    let progress: (@Sendable (String) -> Void)?
    private let done = Locked(0)

    init(total: Int, progress: (@Sendable (String) -> Void)?) {
        self.total = total
        self.progress = progress
    }

    func checked(_ label: String) {
        guard let progress else { return }
        let n = done.withLock { count in
            count += 1
            return count
        }
        progress("checked \(n)/\(total): \(label)")
    }
}
