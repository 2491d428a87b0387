"""A real Unity Catalog permissions server on loopback, for tests.

Implements the parts of the contract sevtool uses (list catalogs/schemas/tables, GET/PATCH permissions),
with the catalog's inheritance semantics available as an independent oracle (`can_read`), pagination with a
configurable page size (optionally an empty page that still carries a token), fault injection (429 with
Retry-After, 5xx, slow answers) and bearer-token auth. Every request and every 200 response is validated
against the OpenAPI file; a mismatch is answered 400 and recorded in `violations`, which tests assert empty.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import jsonschema
import yaml

# The published contract, kept in the repository (tests/contracts/README.md says where it comes from).
CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "unity-catalog-openapi.yaml"
API_ROOT = "/api/2.1/unity-catalog"

# Which privileges each securable type accepts (Unity Catalog's privilege model).
VALID_PRIVILEGES = {
    "catalog": {
        "USE CATALOG",
        "USE SCHEMA",
        "SELECT",
        "MODIFY",
        "CREATE SCHEMA",
        "CREATE TABLE",
        "CREATE FUNCTION",
        "EXECUTE",
        "CREATE VOLUME",
        "READ VOLUME",
        "CREATE MODEL",
    },
    "schema": {
        "USE SCHEMA",
        "SELECT",
        "MODIFY",
        "CREATE TABLE",
        "CREATE FUNCTION",
        "EXECUTE",
        "CREATE VOLUME",
        "READ VOLUME",
        "CREATE MODEL",
    },
    "table": {"SELECT", "MODIFY"},
}


def spaced(privilege: str) -> str:
    return privilege.replace("_", " ").upper()


class Contract:
    """The OpenAPI file as a request/response validator (jsonschema over the component schemas)."""

    def __init__(self, path: Path = CONTRACT):
        self.doc = yaml.safe_load(path.read_text())
        self._validators: dict[int, jsonschema.Validator] = {}
        self.routes = []
        for template, item in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"
            self.routes.append((re.compile(pattern), template, item))

    def _validate(self, schema: dict, value, where: str) -> list[str]:
        validator = self._validators.get(id(schema))
        if validator is None:
            validator = self._validators[id(schema)] = jsonschema.Draft202012Validator(
                {**schema, "components": self.doc["components"]}
            )
        return [f"{where}: {e.message}" for e in validator.iter_errors(value)]

    def operation(self, method: str, path: str) -> tuple[dict, dict, dict] | None:
        for pattern, _template, item in self.routes:
            m = pattern.match(path)
            if m and method.lower() in item:
                return item, item[method.lower()], {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    def check_request(self, method: str, path: str, query: dict[str, str], body) -> list[str]:
        found = self.operation(method, path)
        if found is None:
            return [f"{method} {path}: not in the contract"]
        item, op, path_params = found
        problems = []
        params = item.get("parameters", []) + op.get("parameters", [])
        declared = {p["name"] for p in params if p["in"] == "query"}
        for extra in set(query) - declared:
            problems.append(f"{method} {path}: query parameter {extra!r} is not in the contract")
        for p in params:
            source = path_params if p["in"] == "path" else query
            if p["name"] not in source:
                if p.get("required"):
                    problems.append(f"{method} {path}: required {p['in']} parameter {p['name']!r} missing")
                continue
            value = source[p["name"]]
            if p["schema"].get("type") == "integer":
                if not re.fullmatch(r"-?\d+", value):
                    problems.append(f"{method} {path}: {p['name']}={value!r} is not an integer")
                    continue
                value = int(value)
            problems += self._validate(p["schema"], value, f"{method} {path} {p['name']}")
        if "requestBody" in op:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            problems += self._validate(schema, body, f"{method} {path} body")
        return problems

    def check_response(self, method: str, path: str, body) -> list[str]:
        _item, op, _ = self.operation(method, path)
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        return self._validate(schema, body, f"{method} {path} response")


@dataclass
class Fault:
    status: int | None = None  # answer this status instead of serving
    retry_after: str | None = None  # Retry-After header value
    delay: float = 0.0  # sleep before answering (slow responses, client timeouts)
    path: str = ""  # only requests whose path starts with this
    method: str | None = None


class FakeUnityCatalog:
    def __init__(
        self,
        *,
        page_size: int = 2,
        empty_pages: bool = False,
        dialect: str = "oss",
        token: str | None = None,
        contract: Contract | None = None,
        latency: float = 0.0,
    ):
        self.page_size = page_size
        self.empty_pages = empty_pages
        self.dialect = dialect  # "oss": "USE SCHEMA"; "databricks": "USE_SCHEMA"
        self.token = token
        self.latency = latency  # added to every answer, like a network round trip
        self.contract = contract or Contract()
        self.catalogs: dict[str, dict] = {}
        self.schemas: dict[str, dict] = {}
        self.tables: dict[str, dict] = {}
        self.grants: dict[tuple[str, str], dict[str, list[str]]] = {}
        self.faults: list[Fault] = []
        self.metastore_id = "ms-11111111-2222"  # what GET /metastore_summary answers (audit rows name it)
        self.ignore_patches = False  # answer 200 to PATCH but change nothing (a fix that does not stick)
        self.requests: list[tuple[str, str, dict]] = []
        self.violations: list[str] = []
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    # --- seeding (server side, like an admin or a job acting on the catalog) ---------------------

    def spell(self, privilege: str) -> str:
        text = spaced(privilege)
        return text.replace(" ", "_") if self.dialect == "databricks" else text

    def add_catalog(self, name: str, grants: dict[str, list[str]] | None = None) -> None:
        self.catalogs[name] = {"name": name, "owner": "admin", "comment": f"catalog {name}"}
        self._set_grants("catalog", name, grants)

    def add_schema(self, catalog: str, name: str, grants: dict[str, list[str]] | None = None) -> None:
        full = f"{catalog}.{name}"
        self.schemas[full] = {"name": name, "catalog_name": catalog, "full_name": full, "owner": "admin"}
        self._set_grants("schema", full, grants)

    def add_table(
        self,
        catalog: str,
        schema: str,
        name: str,
        *,
        comment: str | None = None,
        table_type: str = "MANAGED",
        grants: dict[str, list[str]] | None = None,
    ) -> None:
        full = f"{catalog}.{schema}.{name}"
        self.tables[full] = {
            "name": name,
            "catalog_name": catalog,
            "schema_name": schema,
            "table_type": table_type,
            "data_source_format": "DELTA",
            "owner": "admin",
            "table_id": f"id-{len(self.tables) + 1}",
            **({"comment": comment} if comment else {}),
        }
        self._set_grants("table", full, grants)

    def _set_grants(self, stype: str, full: str, grants: dict[str, list[str]] | None) -> None:
        self.grants[(stype, full)] = {}
        for principal, privs in (grants or {}).items():
            self.grant(stype, full, principal, *privs)

    def grant(self, stype: str, full: str, principal: str, *privileges: str) -> None:
        held = self.grants.setdefault((stype, full), {}).setdefault(principal, [])
        for p in privileges:
            if self.spell(p) not in held:
                held.append(self.spell(p))

    def privileges(self, stype: str, full: str, principal: str) -> set[str]:
        return {spaced(p) for p in self.grants.get((stype, full), {}).get(principal, [])}

    def can_read(self, principal: str, table: str) -> bool:
        """The oracle: SELECT on table/schema/catalog AND USE SCHEMA on schema/catalog AND USE CATALOG."""
        cat, sch, _ = table.split(".")
        c, s, t = (
            self.privileges("catalog", cat, principal),
            self.privileges("schema", f"{cat}.{sch}", principal),
            self.privileges("table", table, principal),
        )
        return "USE CATALOG" in c and "USE SCHEMA" in (c | s) and "SELECT" in (c | s | t)

    # --- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        status: int = 503,
        *,
        retry_after: str | None = None,
        path: str = "",
        method: str | None = None,
    ) -> None:
        self.faults += [Fault(status=status, retry_after=retry_after, path=path, method=method) for _ in range(count)]

    def slow_next(self, count: int, seconds: float, *, path: str = "") -> None:
        self.faults += [Fault(delay=seconds, path=path) for _ in range(count)]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for i, fault in enumerate(self.faults):
                if path.startswith(fault.path) and fault.method in (None, method):
                    return self.faults.pop(i)
        return None

    # --- serving ---------------------------------------------------------------------------

    def _page(self, items: list[dict], key: str, query: dict[str, str]) -> dict:
        size = self.page_size
        if query.get("max_results"):
            size = min(size, int(query["max_results"])) or size
        token = query.get("page_token")
        offset, empty_done = 0, False
        if token:
            offset_text, _, flag = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
            offset, empty_done = int(offset_text), flag == "e"
        if self.empty_pages and not empty_done:
            # An empty page that still carries a token: clients must keep going.
            return {key: [], "next_page_token": base64.urlsafe_b64encode(f"{offset}:e".encode()).decode()}
        chunk = items[offset : offset + size]
        out = {key: chunk}
        if offset + size < len(items):
            out["next_page_token"] = base64.urlsafe_b64encode(f"{offset + size}:".encode()).decode()
        return out

    def _permissions_body(self, stype: str, full: str, principal: str | None = None) -> dict:
        grants = self.grants.get((stype, full), {})
        return {
            "privilege_assignments": [
                {"principal": p, "privileges": list(v)}
                for p, v in grants.items()
                if v and (principal is None or p == principal)
            ]
        }

    def _exists(self, stype: str, full: str) -> bool:
        return full in {"catalog": self.catalogs, "schema": self.schemas, "table": self.tables}.get(stype, {})

    def handle(self, method: str, path: str, query: dict[str, str], body) -> tuple[int, dict]:
        if method == "GET" and path == "/metastore_summary":
            return 200, {"metastore_id": self.metastore_id}
        if method == "GET" and path == "/catalogs":
            return 200, self._page(sorted(self.catalogs.values(), key=lambda c: c["name"]), "catalogs", query)
        if method == "GET" and path == "/schemas":
            items = [s for s in self.schemas.values() if s["catalog_name"] == query["catalog_name"]]
            return 200, self._page(sorted(items, key=lambda s: s["full_name"]), "schemas", query)
        if method == "GET" and path == "/tables":
            items = [
                t
                for f, t in sorted(self.tables.items())
                if t["catalog_name"] == query["catalog_name"] and t["schema_name"] == query["schema_name"]
            ]
            return 200, self._page(items, "tables", query)
        m = re.fullmatch(r"/permissions/([^/]+)/([^/]+)", path)
        if m:
            stype, full = m.group(1), unquote(m.group(2))
            if not self._exists(stype, full):
                return 404, {"error_code": "NOT_FOUND", "message": f"{stype} {full} does not exist"}
            if method == "GET":
                return 200, self._permissions_body(stype, full, query.get("principal"))
            for change in body["changes"]:
                for p in change["add"] + change["remove"]:
                    if spaced(p) not in VALID_PRIVILEGES[stype]:
                        return 400, {
                            "error_code": "INVALID_PARAMETER_VALUE",
                            "message": f"privilege {p} is not valid on a {stype}",
                        }
            if self.ignore_patches:
                return 200, self._permissions_body(stype, full)
            with self.lock:
                for change in body["changes"]:
                    held = self.grants.setdefault((stype, full), {}).setdefault(change["principal"], [])
                    removing = {spaced(p) for p in change["remove"]}
                    held[:] = [p for p in held if spaced(p) not in removing]
                    for p in change["add"]:
                        if self.spell(p) not in held:
                            held.append(self.spell(p))
            return 200, self._permissions_body(stype, full)
        return 404, {"error_code": "NOT_FOUND", "message": f"no route {method} {path}"}

    def _for_validation(self, value):
        """Databricks spells privileges with underscores; the OSS contract's enum uses spaces."""
        if self.dialect != "databricks":
            return value
        text = json.dumps(value)
        return json.loads(re.sub(r'"([A-Z]+(?:_[A-Z]+)+)"', lambda m: json.dumps(m.group(1).replace("_", " ")), text))

    def start(self) -> FakeUnityCatalog:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                if not parts.path.startswith(API_ROOT):
                    return self._send(404, {"error_code": "NOT_FOUND", "message": "not under the API root"})
                path = parts.path[len(API_ROOT) :]
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append((method, path, query))
                time.sleep(fake.latency)
                fault = fake._take_fault(method, path)
                if fault and fault.delay:
                    time.sleep(fault.delay)
                if fault and fault.status:
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    return self._send(
                        fault.status, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected fault"}, headers
                    )
                if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._send(
                        401, {"error_code": "UNAUTHENTICATED", "message": "missing or wrong bearer token"}
                    )
                problems = fake.contract.check_request(method, path, query, fake._for_validation(body))
                if problems:
                    fake.violations += problems
                    return self._send(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "; ".join(problems)})
                status, answer = fake.handle(method, path, query, body)
                if status == 200:
                    bad = fake.contract.check_response(method, path, fake._for_validation(answer))
                    fake.violations += bad
                self._send(status, answer)

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def do_GET(self):
                self._serve("GET")

            def do_PATCH(self):
                self._serve("PATCH")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{API_ROOT}"

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def seed_drill(uc: FakeUnityCatalog, principal: str = "account users") -> None:
    """A small telemetry warehouse: one table granted directly, a schema that grants SELECT to everyone,
    and an unrelated schema nobody in scope can read."""
    uc.add_catalog("main", {principal: ["USE CATALOG"], "data-eng": ["USE CATALOG", "USE SCHEMA", "SELECT"]})
    uc.add_schema("main", "telemetry", {principal: ["USE SCHEMA"]})
    uc.add_table("main", "telemetry", "keystrokes", comment="DSS 4 keystroke capture", grants={principal: ["SELECT"]})
    uc.add_table("main", "telemetry", "mouse_moves", comment="DSS 3", grants={"data-eng": ["MODIFY"]})
    uc.add_schema("main", "chats", {principal: ["USE SCHEMA", "SELECT"]})
    uc.add_table("main", "chats", "private_messages", comment="DSS 4")
    uc.add_table("main", "chats", "channel_index", comment="DSS 2")
    uc.add_schema("main", "finance", {"data-eng": ["USE SCHEMA"]})
    uc.add_table("main", "finance", "payroll", comment="DSS 4", grants={principal: ["SELECT"]})
