"""Report: report.json / .md / .html / trace.jsonl and the text views, redaction."""
