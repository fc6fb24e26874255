import ArgumentParser
import Foundation

/// `--s3-endpoint URL`, beside every `--repo`: the S3-compatible service a
/// `--repo s3://...` lives in (MinIO, Ceph RGW, R2, B2...). It outranks
/// `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` and the profile's endpoint
/// (docs/storage.md, "S3"); it is set as `AWS_ENDPOINT_URL_S3` for this
/// process, so every store the command opens uses it. That happens when the
/// option is validated, which ArgumentParser does for every command that
/// has the group, before `run()`: no command can forget it.
struct S3EndpointOption: ParsableArguments {
    @Option(
        name: .customLong("s3-endpoint"),
        help: ArgumentHelp(
            "With --repo s3://BUCKET/PREFIX: the S3-compatible service's URL (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's, or AWS).",
            valueName: "URL"))
    var s3Endpoint: String?

    func validate() throws {
        guard let s3Endpoint else { return }
        guard let url = URLComponents(string: s3Endpoint), ["http", "https"].contains(url.scheme ?? ""), !(url.host ?? "").isEmpty else {
            throw ValidationError("'--s3-endpoint' must be an http:// or https:// URL such as https://s3.eu-central-1.amazonaws.com, not '\(s3Endpoint)'")
        }
        setenv("AWS_ENDPOINT_URL_S3", s3Endpoint, 1)
    }
}
