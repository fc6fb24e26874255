#!/usr/bin/env python3
"""Puts a Markdown section, read from stdin and starting with its `## Title`
line, into a benchmarks document: it replaces the section of that title up to
the next `## ` heading, or is appended. Used by the bench scripts.

    bench-doc-section.py DOC < section.md
"""
import os
import re
import sys

doc = sys.argv[1]
section = sys.stdin.read().rstrip("\n")
title = section.splitlines()[0]
text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
pattern = re.compile(re.escape(title) + r"\n.*?(?=\n## |\Z)", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
open(doc, "w").write(text.rstrip("\n") + "\n")
