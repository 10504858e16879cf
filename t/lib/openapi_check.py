#!/usr/bin/python3
# openapi.yaml against the module (t/075-openapi.t).
#
#   openapi_check.py routes  OPENAPI ROUTE_TABLE_C
#   openapi_check.py answers OPENAPI ROUTE_TABLE_C  < exchanges.json
#
# routes: every route of the C route table documented with its method (":id"
# is "{id}"), public routes with "security: []", the others under the bearer
# scheme, and no /api operation documented that the table does not serve.
# answers: stdin is a JSON list of {method, path, status, contentType, body
# or text, request?}; each status must be documented for its operation, each
# JSON body valid against the documented schema (JSON Schema 2020-12, as
# OpenAPI 3.1 says), each request body of a 2xx valid against the documented
# request body; every documented operation answered a 2xx, and every route
# of the table an error too.
# Prints "ok" or one line a finding.

import json
import re
import sys

import jsonschema
import yaml

METHODS = ("get", "put", "post", "delete", "patch")


def route_table(path):
    src = open(path, encoding="utf-8").read()
    table = src[src.index("ngx_http_chat_routes[] = {"):]
    table = table[:table.index("{ 0, ngx_null_string")]
    routes = []
    for m in re.finditer(r'\{ NGX_HTTP_(\w+), ngx_string\("([^"]+)"\),'
                         r'\s*([^,]*),', table):
        routes.append((m.group(1).lower(),
                       re.sub(r":(\w+)", r"{\1}", m.group(2)),
                       "PUBLIC" in m.group(3)))
    return routes


def operations(spec):
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def check_routes(spec, routes, out):
    if not str(spec.get("openapi", "")).startswith("3.1"):
        out.append("not OpenAPI 3.1: %r" % spec.get("openapi"))
    schemes = spec.get("components", {}).get("securitySchemes", {})
    bearer = [n for n, s in schemes.items()
              if s.get("type") == "http" and s.get("scheme") == "bearer"]
    if not bearer:
        out.append("no http bearer security scheme")
    if spec.get("security") != [{b: []} for b in bearer[:1]]:
        out.append("the default security is not the bearer scheme")

    ops = {(m, p): op for m, p, op in operations(spec)}
    served = set()
    for method, path, public in routes:
        served.add((method, path))
        op = ops.get((method, path))
        if op is None:
            out.append("not documented: %s %s" % (method.upper(), path))
            continue
        sec = op.get("security")
        if public and sec != []:
            out.append("public but not security []: %s %s"
                       % (method.upper(), path))
        if not public and sec is not None and sec != spec.get("security"):
            out.append("needs a token but says otherwise: %s %s"
                       % (method.upper(), path))
    for method, path in ops:
        if path.startswith("/api/") and (method, path) not in served:
            out.append("documented, not served: %s %s"
                       % (method.upper(), path))

    # every schema a valid 2020-12 schema
    for name, schema in spec.get("components", {}).get("schemas",
                                                        {}).items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            out.append("schema %s: %s" % (name, e.message))


def path_regex(template):
    parts = re.split(r"(\{\w+\})", template)
    rx = "".join("[^/]+" if p.startswith("{") else re.escape(p)
                 for p in parts)
    return re.compile("^" + rx + "/?$")


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def find_op(spec, method, path):
    path = path.split("?")[0]
    best = None
    for m, template, op in operations(spec):
        if m != method or not path_regex(template).match(path):
            continue
        params = template.count("{")
        # the router's order: a fixed segment before a parameter
        if best is None or params < best[0]:
            best = (params, template, op)
    return best


def check_answers(spec, routes, exchanges, out):
    resolver = jsonschema.RefResolver("", spec)

    def validate(schema, value, what):
        v = jsonschema.Draft202012Validator(schema, resolver=resolver)
        errs = sorted(v.iter_errors(value), key=lambda e: list(e.path))
        for e in errs[:3]:
            out.append("%s: %s at %s" % (what, e.message,
                                         "/".join(map(str, e.path))))

    ok2xx, err = set(), set()
    for x in exchanges:
        x["status"] = int(x["status"])
        what = "%s %s %s" % (x["method"], x["path"], x["status"])
        found = find_op(spec, x["method"].lower(), x["path"])
        if found is None:
            out.append("no operation for " + what)
            continue
        _, template, op = found
        key = (x["method"].lower(), template)
        if 200 <= x["status"] < 300:
            ok2xx.add(key)
        else:
            err.add(key)
        resp = op.get("responses", {}).get(str(x["status"]))
        if resp is None:
            out.append("status not documented: %s %s" % (what, json.dumps(
                x.get("body", x.get("text")))[:200]))
            continue
        resp = resolve(spec, resp)
        content = resp.get("content", {}).get("application/json")
        if content is None:
            continue
        if not x["contentType"].startswith("application/json"):
            out.append("%s: not JSON (%s)" % (what, x["contentType"]))
            continue
        if "body" not in x:
            out.append("%s: a body that does not parse" % what)
            continue
        validate(content.get("schema", {}), x["body"], what)
        if 200 <= x["status"] < 300 and "request" in x:
            rb = resolve(spec, op.get("requestBody", {}))
            rs = rb.get("content", {}).get("application/json", {})
            if "schema" not in rs:
                out.append("%s: no JSON request body documented" % what)
            else:
                validate(rs["schema"], x["request"], "request of " + what)

    for method, path, _ in operations(spec):
        if (method, path) not in ok2xx:
            out.append("never answered 2xx: %s %s" % (method.upper(), path))
    for method, path, _ in routes:
        if (method, path) not in err:
            out.append("never answered an error: %s %s"
                       % (method.upper(), path))


def main():
    mode, spec_path, table_path = sys.argv[1:4]
    out = []
    spec = yaml.safe_load(open(spec_path, encoding="utf-8"))
    routes = route_table(table_path)
    if not routes:
        out.append("no routes read from " + table_path)
    if mode == "routes":
        check_routes(spec, routes, out)
    else:
        check_answers(spec, routes, json.load(sys.stdin), out)
    seen = set()
    for line in out:
        if line not in seen:
            seen.add(line)
            print(line)
    if not out:
        print("ok")


main()
