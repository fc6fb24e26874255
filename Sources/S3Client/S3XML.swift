import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The few XML documents S3 answers with, read as a flat sequence of closed
/// elements: each with its path from the root (`ListBucketResult/Contents/Key`)
/// and its text. Enough for errors, listings and multipart results; nothing
/// here needs the document's structure beyond that.
enum S3XML {
    struct Element {
        let path: String
        let text: String
        var name: Substring { path.split(separator: "/").last ?? "" }
    }

    /// The closed elements in document order (children before their parent), or nil if not XML.
    static func elements(_ bytes: [UInt8]) -> [Element]? {
        let parser = XMLParser(data: Data(bytes))
        let collector = Collector()
        parser.delegate = collector
        return parser.parse() ? collector.elements : nil
    }

    /// The service error in a body (`<Error><Code>…</Code><Message>…</Message>`), if it is one.
    static func error(_ bytes: [UInt8]) -> (code: String, message: String, requestId: String?)? {
        guard let elements = elements(bytes), elements.last?.path == "Error" else { return nil }
        func field(_ name: String) -> String? { elements.first { $0.path == "Error/\(name)" }?.text }
        return (field("Code") ?? "", field("Message") ?? "", field("RequestId"))
    }

    private final class Collector: NSObject, XMLParserDelegate {
        var elements: [Element] = []
        private var stack: [String] = []
        private var text = ""

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            stack.append(name)
            text = ""
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            elements.append(Element(path: stack.joined(separator: "/"), text: text))
            stack.removeLast()
            text = ""
        }
    }
}
