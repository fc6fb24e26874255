@testable import PGVaultCore
import Testing

/// The line-based reading of pg_dump's scripts knows when a line lies inside
/// a literal, a dollar-quoted body or a comment that an earlier line opened.
@Suite("schema scripts")
struct SchemaScriptTests {
    @Test("a line starting with a backslash, or looking like an object header, inside a literal, an E'' string, a dollar-quoted body or a block comment is text, not a meta-command or a header")
    func linesInsideQuotes() throws {
        let script = #"""
            SET client_encoding = 'UTF8';
            \restrict abc123

            --
            -- Statistics for Name: h; Type: STATISTICS DATA; Schema: public; Owner: -
            --

            SELECT * FROM pg_catalog.pg_restore_attribute_stats(
            	'most_common_vals', '{"line1
            \\.x"}'::text,
            	'n_distinct', '3'::real
            );

            --
            -- Name: f(); Type: FUNCTION; Schema: public; Owner: postgres
            --

            CREATE FUNCTION public.f() RETURNS text LANGUAGE sql AS $body$
            SELECT 'it''s';
            \connect elsewhere
            --
            -- Name: not_a_header; Type: TABLE; Schema: public; Owner: x
            --
            $body$;

            --
            -- Name: t; Type: COMMENT; Schema: public; Owner: postgres
            --

            COMMENT ON TABLE public.t IS E'a \' quote
            \\q and /* no comment';
            /* a block /* nested
            \x */ still
            */

            \unrestrict abc123
            """#
        let parsed = try SchemaScript.parse(script)
        #expect(parsed.objects.map(\.name) == ["h", "f()", "t"])
        #expect(parsed.objects.map(\.type) == ["STATISTICS DATA", "FUNCTION", "COMMENT"])
        #expect(parsed.objects[0].sql.contains("\n\\\\.x\"}'::text"))
        #expect(parsed.objects[1].sql.contains("\\connect elsewhere") && parsed.objects[1].sql.hasSuffix("$body$;"))
        #expect(parsed.objects[2].sql.contains("\\\\q and"))
    }

    @Test("a meta-command at the top level is still refused")
    func topLevelMetaCommand() {
        #expect(throws: PGVaultError.self) { try SchemaScript.parse("SELECT 'a';\n\\connect other\n") }
    }

    @Test("fed a line at a time, the parser hands over each object when the next header is read, with the preamble complete before the first")
    func streaming() throws {
        var lines: [String] = ["SET client_encoding = 'UTF8';", "SELECT pg_catalog.set_config('search_path', '', false);", ""]
        for k in 0..<50 {
            lines += ["--", "-- Statistics for Name: t\(k); Type: STATISTICS DATA; Schema: public; Owner: -", "--", "", "SELECT \(k);", ""]
        }
        var parser = SchemaScript.Parser()
        var emitted: [(index: Int, atLine: Int, preamble: Int)] = []
        for (n, line) in lines.enumerated() {
            try parser.feed(line[...]) { object, preamble in emitted.append((object.index, n, preamble.count)) }
        }
        #expect(emitted.count == 49)
        try parser.finish { object, preamble in emitted.append((object.index, lines.count, preamble.count)) }
        #expect(emitted.map(\.index) == Array(0..<50))
        #expect(emitted.allSatisfy { $0.preamble == 2 })
        // Object k is closed by the third line of header k + 1, never later.
        for k in 0..<49 { #expect(emitted[k].atLine == 3 + 6 * (k + 1) + 2) }
        let whole = try SchemaScript.parse(lines.joined(separator: "\n"))
        #expect(whole.objects.count == 50 && whole.objects[7].sql == "SELECT 7;")
    }

    @Test("a meta-command held back as a possible header is refused at the end too")
    func heldMetaCommand() {
        #expect(throws: PGVaultError.self) { try SchemaScript.parse("SELECT 1;\n--\n\\connect other") }
    }
}
