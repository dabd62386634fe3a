#!/usr/bin/env python3
"""A ClickHouse HTTP interface over chDB, for tests and local development.

chDB embeds the real ClickHouse engine (26.x) in-process, but a modern clickhouse-server binary is not
available from the package registries this project may use. This front end speaks the part of ClickHouse's
HTTP interface that @clickhouse/client uses, so the production code path (client, SQL, formats, errors)
runs unchanged against a real engine:

- GET/POST /            query from the `query` URL parameter and/or the body; for INSERT ... FORMAT X the body
                        is the data, streamed into the engine (chunked and gzip/deflate request bodies accepted)
- multipart/form-data   `query` and `param_*` parts, as the client sends large query parameters
- param_<name>          values for {name:Type} placeholders (bound by the engine, never spliced into SQL)
- database, default_format, query_id, enable_http_compression (gzip/deflate responses), other URL parameters
                        as settings for that one query
- GET /ping, GET /      "Ok.\n"
- errors                HTTP status as ClickHouse maps it, X-ClickHouse-Exception-Code, body "Code: N. DB::Exception: ..."
- X-ClickHouse-Summary, X-ClickHouse-Query-Id, X-ClickHouse-Format headers; HTTP/1.1 keep-alive

One engine connection serves every request, one statement at a time: chDB runs one statement per connection,
and per-query settings are applied with SET and reset afterwards. Optional --user/--password require HTTP basic
auth or X-ClickHouse-User/X-ClickHouse-Key, as the server would.
"""
import argparse
import base64
import gzip
import json
import re
import signal
import sys
import threading
import time
import uuid
import zlib
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from chdb.state import sqlitelike

KEEP_ALIVE_SECONDS = 10
READ_CHUNK = 1 << 20
# ClickHouse's http_max_uri_size default; the client puts query parameters in the URL up to about this size.
MAX_URI_BYTES = 1 << 20

# URL parameters that belong to the HTTP interface itself, not to the query's settings.
HTTP_PARAMS = {
    "query", "database", "default_format", "query_id", "session_id", "session_timeout", "session_check",
    "user", "password", "quota_key", "role", "wait_end_of_query", "buffer_size", "compress", "decompress",
    "enable_http_compression", "http_zlib_compression_level", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "http_wait_end_of_query", "http_response_buffer_size",
}

# ClickHouse's HTTPHandler answers these error codes with a 4xx status; everything else is 500.
STATUS_BY_CODE = {
    **{code: 400 for code in (6, 27, 36, 41, 53, 62, 69, 70, 72, 117)},
    **{code: 404 for code in (46, 47, 60, 81)},
    **{code: 403 for code in (164, 192, 193, 497, 516)},
    194: 401,
}

INSERT_WITH_FORMAT = re.compile(r"^\s*(INSERT\s+INTO\s.*?)\s+FORMAT\s+([A-Za-z0-9_]+)\s*$", re.S | re.I)
# The table of an INSERT ... FORMAT statement, and its column list.
INSERT_TARGET = re.compile(
    r"^\s*INSERT\s+INTO\s+(?:([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(([A-Za-z0-9_,\s]*)\))?\s*$",
    re.S | re.I)
ERROR_CODE = re.compile(r"Code:\s*(\d+)")
NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class QueryError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def engine_error(exc):
    text = str(exc).strip()
    match = ERROR_CODE.search(text)
    code = int(match.group(1)) if match else 1001
    if not match:
        text = f"Code: {code}. DB::Exception: {text}. (STD_EXCEPTION)"
    return QueryError(code, text)


def setting_literal(value):
    if NUMERIC.match(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Engine:
    def __init__(self, data_dir):
        self.conn = sqlitelike.Connection(data_dir)
        self.lock = threading.Lock()

    def _run(self, database, settings, run):
        """Runs `run` alone on the connection, inside the request's database and settings, with engine
        failures turned into QueryError."""
        with self.lock:
            applied = []
            try:
                if database and database != "default":
                    if not IDENTIFIER.fullmatch(database):
                        raise QueryError(81, f"Code: 81. DB::Exception: Database {database} does not exist. (UNKNOWN_DATABASE)")
                    self.conn.query(f"USE {database}")
                for name, value in settings.items():
                    if not IDENTIFIER.fullmatch(name):
                        raise QueryError(115, f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)")
                    self.conn.query(f"SET {name} = {setting_literal(value)}")
                    applied.append(name)
                return run()
            except QueryError:
                raise
            except Exception as exc:
                raise engine_error(exc) from None
            finally:
                for name in applied:
                    self.conn.query(f"SET {name} = DEFAULT")
                if database and database != "default":
                    self.conn.query("USE default")

    def query(self, sql, fmt, params, database, settings):
        def run():
            result = self.conn._conn.query(sql, fmt, params=params)
            return result.bytes(), {
                "read_rows": result.rows_read(), "read_bytes": result.bytes_read(),
                "written_rows": result.rows_written(), "written_bytes": result.bytes_written(),
                "elapsed_ns": int(result.elapsed() * 1e9),
            }
        return self._run(database, settings, run)

    def insert(self, statement, fmt, chunks, database, settings):
        def run():
            target = INSERT_TARGET.match(statement)
            if target:
                table = (target.group(1) or database or "default", target.group(2))
                if self._has_constraints(*table):
                    return self._insert_checked(table, target.group(3), fmt, chunks)
            return self._stream(statement, fmt, chunks)
        return self._run(database, settings, run)

    def _stream(self, statement, fmt, chunks):
        inserter = self.conn.send_insert(statement, fmt)
        try:
            # Clients stream small chunks (the Node client writes about one per row); the engine parses
            # far faster from large buffers.
            pending = bytearray()
            for chunk in chunks:
                pending += chunk
                if len(pending) >= READ_CHUNK:
                    inserter.append(bytes(pending))
                    pending.clear()
            if pending:
                inserter.append(bytes(pending))
            result = inserter.finish()
        except BaseException:
            inserter.cancel()
            raise
        return b"", {
            "read_rows": 0, "read_bytes": 0,
            "written_rows": result.rows_written, "written_bytes": result.bytes_written,
            "elapsed_ns": int(result.elapsed * 1e9),
        }

    def _has_constraints(self, database, table):
        found = self.conn._conn.query(
            "SELECT count() FROM system.tables WHERE database = {d:String} AND name = {t:String}"
            " AND create_table_query LIKE '%CONSTRAINT%'",
            "CSV", params={"d": database, "t": table})
        return found.bytes().strip() != b"0"

    def _insert_checked(self, table, columns, fmt, chunks):
        """chDB's streaming inserter answers success for an insert that a table's CONSTRAINT refuses, and writes
        nothing, where a ClickHouse server answers the error (VIOLATED_CONSTRAINT, 469). Into such a table the
        data is streamed into a staging table first, then moved by an INSERT ... SELECT, which reports it."""
        database, name = table
        target = f"`{database}`.`{name}`"
        staging = f"`{database}`.`.chdb_http_staging`"
        selected = columns if columns and columns.strip() else "*"
        self.conn.query(f"DROP TABLE IF EXISTS {staging}")
        self.conn.query(f"CREATE TABLE {staging} ENGINE = Memory AS SELECT {selected} FROM {target} WHERE 0")
        try:
            self._stream(f"INSERT INTO {staging}", fmt, chunks)
            listed = f" ({columns})" if selected != "*" else ""
            result = self.conn._conn.query(f"INSERT INTO {target}{listed} SELECT * FROM {staging}", "CSV")
        finally:
            self.conn.query(f"DROP TABLE IF EXISTS {staging}")
        return b"", {
            "read_rows": 0, "read_bytes": 0,
            "written_rows": result.rows_written(), "written_bytes": result.bytes_written(),
            "elapsed_ns": int(result.elapsed() * 1e9),
        }



def body_chunks(handler):
    """The request body as a stream of decoded chunks, whatever its transfer and content encoding."""
    rfile = handler.rfile
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        def raw():
            while True:
                size_line = rfile.readline(1024)
                if not size_line:
                    raise QueryError(33, "Code: 33. DB::Exception: Unexpected end of chunked request body. (CANNOT_READ_ALL_DATA)")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                data = rfile.read(size)
                rfile.readline(1024)
                yield data
    else:
        remaining = int(handler.headers.get("Content-Length") or 0)

        def raw():
            nonlocal remaining
            while remaining > 0:
                data = rfile.read(min(READ_CHUNK, remaining))
                if not data:
                    raise QueryError(33, "Code: 33. DB::Exception: Unexpected end of request body. (CANNOT_READ_ALL_DATA)")
                remaining -= len(data)
                yield data

    encoding = handler.headers.get("Content-Encoding", "").lower().strip()
    if encoding in ("", "identity"):
        return raw()
    if encoding not in ("gzip", "deflate"):
        raise QueryError(1, f"Code: 1. DB::Exception: Unknown HTTP Content-Encoding '{encoding}'. (UNSUPPORTED_METHOD)")

    def decoded():
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        for data in raw():
            yield inflater.decompress(data)
        yield inflater.flush()

    return decoded()


def split_multipart(content_type, body):
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            parts[name] = part.get_payload(decode=True).decode("utf-8")
    return parts


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb-http"
    # Headers and body go out in separate writes; with Nagle's algorithm and the client's delayed ACK every
    # response would wait about 40 ms.
    disable_nagle_algorithm = True

    def handle_one_request(self):
        # The same as http.server's, but with ClickHouse's 1 MiB limit on the request line instead of 64 KiB.
        try:
            self.raw_requestline = self.rfile.readline(MAX_URI_BYTES + 1)
            if len(self.raw_requestline) > MAX_URI_BYTES:
                self.close_connection = True
                self.reply(414, b"Code: 1000. DB::Exception: URI is too long. (HTTP_URI_TOO_LONG)\n", {"Connection": "close"})
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(501, f"Unsupported method ({self.command})")
                return
            method()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        path = urlsplit(self.path).path
        if path in ("/ping", "/") and "query=" not in self.path:
            self.reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        self.handle_query()

    def do_POST(self):
        self.handle_query()

    def authorized(self, params):
        expected = self.server.credentials
        if expected is None:
            return True
        user = self.headers.get("X-ClickHouse-User") or params.get("user")
        password = self.headers.get("X-ClickHouse-Key") or params.get("password") or ""
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            user, _, password = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
        return (user or "default", password) == expected

    def handle_query(self):
        url = urlsplit(self.path)
        if url.path not in ("/", ""):
            self.reply(404, b"There is no handle " + url.path.encode() + b"\n", {})
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            if not self.authorized(params):
                raise QueryError(516, "Code: 516. DB::Exception: default: Authentication failed: password is incorrect, "
                                      "or there is no user with such name. (AUTHENTICATION_FAILED)")
            self.run(params, query_id)
        except QueryError as err:
            self.fail(err, query_id)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def run(self, params, query_id):
        query = params.get("query", "")
        chunks = body_chunks(self) if self.command == "POST" else iter(())
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            parts = split_multipart(content_type, b"".join(chunks))
            query = parts.pop("query", query)
            params.update(parts)
            chunks = iter(())
        bind = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        settings = {k: v for k, v in params.items() if k not in HTTP_PARAMS and not k.startswith("param_")}
        database = params.get("database")
        insert = INSERT_WITH_FORMAT.match(query) if query else None
        if insert:
            body, summary = self.server.engine.insert(insert.group(1), insert.group(2), chunks, database, settings)
        else:
            if query:
                rest = b"".join(chunks)
                if rest:
                    query = query + " " + rest.decode("utf-8")
            else:
                query = b"".join(chunks).decode("utf-8")
            if not query.strip():
                raise QueryError(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
            fmt = params.get("default_format") or "TabSeparated"
            body, summary = self.server.engine.query(query, fmt, bind, database, settings)
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Summary": json.dumps({k: str(v) for k, v in {
                **summary, "total_rows_to_read": summary["read_rows"], "result_rows": 0, "result_bytes": len(body),
            }.items()}),
        }
        if params.get("enable_http_compression") == "1":
            accepted = self.headers.get("Accept-Encoding", "").lower()
            if "gzip" in accepted:
                body, headers["Content-Encoding"] = gzip.compress(body, 1), "gzip"
            elif "deflate" in accepted:
                body, headers["Content-Encoding"] = zlib.compress(body, 1), "deflate"
        self.reply(200, body, headers)

    def fail(self, err, query_id):
        text = str(err)
        if "(version" not in text:
            text += f" (version {self.server.version})"
        # The body is unread when the query failed before the insert consumed it; keep-alive would misparse it.
        self.close_connection = True
        self.reply(STATUS_BY_CODE.get(err.code, 500), (text + "\n").encode("utf-8"), {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(err.code),
            "X-ClickHouse-Query-Id": query_id,
            "Connection": "close",
        })

    def reply(self, status, body, headers):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if not self.close_connection:
            self.send_header("Keep-Alive", f"timeout={KEEP_ALIVE_SECONDS}")
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default="")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    engine = Engine(args.data_dir)
    server = Server((args.host, args.port), Handler)
    server.engine = engine
    server.verbose = args.verbose
    server.credentials = (args.user, args.password) if args.user else None
    server.version = engine.query("SELECT version()", "TabSeparated", {}, None, {})[0].decode().strip()
    server.timeout = KEEP_ALIVE_SECONDS

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(json.dumps({"msg": "listening", "host": args.host, "port": args.port, "engine": "chDB",
                      "version": server.version, "data_dir": args.data_dir, "ts": time.time()}), flush=True)
    server.serve_forever()
    server.server_close()
    engine.conn.close()


if __name__ == "__main__":
    main()
