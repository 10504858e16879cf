"""Reads a Prometheus text page on stdin with the reference parser
(prometheus_client), prints each sample as JSON: name{labels} -> value.
Exits 1 with the parser's error when the page is not valid."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

out = {}
try:
    for family in text_string_to_metric_families(sys.stdin.read()):
        for s in family.samples:
            labels = ",".join('%s="%s"' % (k, v)
                              for k, v in sorted(s.labels.items()))
            out["%s{%s}" % (s.name, labels)] = s.value
except Exception as e:  # the parser's own error, as the test shows it
    print("invalid page: %s" % e, file=sys.stderr)
    sys.exit(1)
print(json.dumps(out))
