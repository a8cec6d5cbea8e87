"""Instance settings: ``<data-dir>/config.toml`` overridden by ``NCC_*`` environment variables.

This is the only module that reads the environment. Settings are typed, frozen and validated at
start; every error names the offending key (``ConfigError: port: must be an integer …``).
The table ``SETTINGS`` is the single source of truth for keys, types, defaults and documentation:
the example configs and the README are checked against it by a test.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

CONFIG_FILE = "config.toml"
ENV_PREFIX = "NCC_"
ROLES = ("node", "hub")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
# EU Member States plus the EEA states that may take part (configurable: `allowed_countries`).
# ISO 3166-1 codes throughout: Greece is GR (EU sources say EL; importers map it).
EU_COUNTRIES = (
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
)
EEA_COUNTRIES = ("IS", "LI", "NO")


class ConfigError(Exception):
    """A setting is missing or invalid; the message starts with the key's name."""


@dataclass(frozen=True)
class Setting:
    """One configuration key: its type, default and meaning."""

    key: str
    kind: str  # "str" | "int" | "float" | "bool" | "list"
    default: Any
    doc: str
    roles: tuple[str, ...] = ROLES
    check: Callable[[Any], str | None] | None = None


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _line_max(value: Any) -> str | None:
    return None if 1024 <= value <= 4 * 1024 * 1024 else "must be between 1024 and 4194304 (4 MiB)"


def _port(value: Any) -> str | None:
    return None if 0 <= value <= 65535 else "must be between 0 and 65535"


def _url(value: Any) -> str | None:
    if value and not re.match(r"^https?://[^\s/]+", value):
        return "must be an http(s) URL"
    return None


def _db(value: Any) -> str | None:
    if value and not re.match(r"^(sqlite|postgres|postgresql|asyncpg)://", value):
        return "must start with sqlite://, postgres:// or postgresql://"
    return None


def country_code(text: str) -> str:
    """A country code as a person types it (``de``, `` De ``) in the one form the federation writes: ISO
    3166-1 alpha-2 in capitals. Every input of a country (CLI arguments, search filters) goes through here.

    Raises:
        ValueError: not two letters (the message says what is expected).
    """
    code = text.strip().upper()
    if not COUNTRY_RE.match(code):
        raise ValueError(f"{text!r} is not an ISO 3166-1 alpha-2 country code (GR for Greece)")
    return code


def _country(value: Any) -> str | None:
    if value and not COUNTRY_RE.match(value):
        return "must be an ISO 3166-1 alpha-2 code in capitals (GR for Greece)"
    return None


def _choice(*options: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {', '.join(options)}"

    return check


def _max_days(days: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value <= 0 or value > days * 86400:
            return f"must be between 1 and {days * 86400} seconds ({days} days)"
        return None

    return check


def _networks(value: Any) -> str | None:
    import ipaddress

    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"{item!r} is not an IP address or CIDR network"
    return None


EMAIL_RE = re.compile(r"\A[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z")


def _emails(value: Any) -> str | None:
    bad = [v for v in value if not EMAIL_RE.match(v)]
    return f"{bad[0]!r} is not an e-mail address" if bad else None


def _mail_from(value: Any) -> str | None:
    if not value:
        return None
    from email.utils import parseaddr

    if any(c in value for c in "\r\n") or not EMAIL_RE.match(parseaddr(value)[1]):
        return "must be an address, optionally with a name: `NCC DE <noreply@ncc.example>`"
    return None


def _smtp(value: Any) -> str | None:
    if value and not re.match(r"^smtps?://([^@/\s]+@)?[^@/\s:]+(:\d{1,5})?/?$", value):
        return "must be smtp://[user@]host:port or smtps://[user@]host:port (no password: smtp_password_file)"
    return None


SETTINGS: tuple[Setting, ...] = (
    Setting("role", "str", None, "Instance role: `node` (an NCC's registry) or `hub` (the Centre).",
            check=_choice(*ROLES)),
    Setting("country", "str", "", "ISO 3166-1 alpha-2 country of this NCC (required; GR for Greece).",
            roles=("node",), check=_country),
    Setting("host", "str", "127.0.0.1", "Address `ncc serve` listens on."),
    Setting("port", "int", 8080, "Port `ncc serve` listens on.", check=_port),
    Setting("url", "str", "", "Public base URL of this instance (default http://127.0.0.1:<port>).",
            check=_url),
    Setting("db", "str", "", "Database URL: empty = SQLite file `ncc.db` in the data dir; "
            "`postgres://user@host:5432/db` selects PostgreSQL.", check=_db),
    Setting("db_password_file", "str", "", "File holding the database password (one line, mode 0600); "
            "empty = `keys/db-password` in the data dir when it exists. The environment variable "
            "NCC_DB_PASSWORD overrides both. The password is never written into config.toml."),
    Setting("db_pool_max", "int", 10, "Maximum PostgreSQL connections per process.", check=_positive),
    Setting("max_body_bytes", "int", 1_048_576, "Largest accepted request body in bytes (413 above).",
            check=_positive),
    Setting("max_form_bytes", "int", 256 * 1024, "Largest portal form in bytes: a record typed in at "
            "`/admin/records`, an application at `/apply` (413 above; raise it with the schemas' longest "
            "texts).", check=_positive),
    Setting("log_level", "str", "INFO", "Log level: DEBUG, INFO, WARNING, ERROR.",
            check=_choice("DEBUG", "INFO", "WARNING", "ERROR")),
    Setting("log_format", "str", "json", "Log format: `json` (one object a line) or `text`.",
            check=_choice("json", "text")),
    Setting("token_ttl_s", "int", 30 * 86400, "Default lifetime of user tokens from `ncc token create`.",
            check=_positive),
    Setting("token_max_ttl_s", "int", 90 * 86400, "Longest lifetime `ncc token create --ttl` may give a user "
            "token (a longer one is a usage error).", check=_max_days(3650)),
    Setting("session_ttl_s", "int", 12 * 3600, "Lifetime of a portal sign-in; it also ends with its token "
            "(expiry, revocation) and at logout.", check=_max_days(30)),
    Setting("service_token_ttl_s", "int", 120, "Lifetime of the service tokens this instance signs for its "
            "calls to another (pulls, notifications, live queries), seconds: longer tolerates a slower "
            "network or clock drift, shorter keeps the peer's replay table smaller (≤ 300).",
            check=lambda v: None if 10 <= v <= 300 else "must be between 10 and 300 seconds"),
    Setting("service_call_rate", "int", 50, "Service-token calls accepted per second from each calling "
            "instance (burst: twice as many); beyond it 429 `rate_limited`, before the token's jti is "
            "stored.", check=_positive),
    Setting("allowed_countries", "list", list(EU_COUNTRIES + EEA_COUNTRIES),
            "Countries that may own records and enroll nodes (EU 27 + EEA by default)."),
    Setting("clock_skew_s", "int", 300, "Tolerated clock skew for issued_at and tokens, seconds.",
            check=_positive),
    Setting("search_max_limit", "int", 100, "Largest `limit` a search request may ask for.",
            check=_positive),
    Setting("search_accelerator", "bool", True, "Answer searches from the in-memory accelerator (roaring "
            "bitmaps rebuilt from the database); false = SQL only."),
    Setting("malloc_mmap_threshold_kib", "int", 8192, "`ncc serve`: blocks of this many KiB and more get their "
            "own memory mapping, handed back to the system when freed, and glibc stops raising the "
            "threshold as they are freed (its default): at 1M records a serving hub held 320 MB with the "
            "dynamic threshold, 298 MB with 8192 KiB at the same latency, 252 MB with 128 KiB but 3-7 ms "
            "more per search. 0 = glibc's dynamic threshold; elsewhere than glibc: no effect.",
            check=lambda v: None if 0 <= v <= 32768 else "must be between 0 and 32768 KiB"),
    Setting("live_timeout_ms", "int", 2000, "Default deadline of a live federated query, milliseconds.",
            check=_positive),
    Setting("erasure_purge_s", "int", 300, "Seconds between runs of the erasure purge job (it also runs at "
            "every clean stop): what an erased record left in the database files is scrubbed.",
            check=_positive),
    Setting("erasure_vacuum_full", "bool", False, "PostgreSQL: the erasure purge rewrites the tables that held "
            "the payload with VACUUM FULL (locks each table meanwhile), so no old bytes stay in free space."),
    Setting("feed_page_max_bytes", "int", 8 * 1024 * 1024, "Feed page size in bytes: a node ends a page "
            "before it (a single larger record travels alone); a hub refuses a page over twice it, "
            "compressed or decompressed.", check=_positive),
    Setting("feed_line_max_bytes", "int", 4 * 1024 * 1024, "Hub: longest feed line (one record envelope) "
            "read from a node; a longer one fails the page `line_too_long`. At most 4 MiB, the protocol's "
            "ceiling.", roles=("hub",), check=_line_max),
    # node
    Setting("live_search_rate", "int", 10, "Node: live queries from the hub answered per second (burst: "
            "twice as many); beyond it 429 `rate_limited`, so anonymous live searches at the hub cost the "
            "node a bounded amount of CPU and replay-table rows.", roles=("node",), check=_positive),
    Setting("notify_retry_s", "int", 30, "Node: retry interval for failed notifications to the hub.",
            roles=("node",), check=_positive),
    Setting("notify_backoff_max_s", "int", 900, "Node: longest wait between notifications the hub refuses "
            "(a suspended or revoked node; the wait doubles from `notify_retry_s`).", roles=("node",),
            check=_positive),
    Setting("audit_interval_s", "int", 3600, "Node: seconds between scheduled audits of the hub's "
            "transparency log (`ncc audit`; result at GET /api/v1/audit).", roles=("node",), check=_positive),
    Setting("audit_max_proofs", "int", 500, "Node: inclusion proofs an audit checks at most per run (new log "
            "entries first; the rest at the next runs).", roles=("node",), check=_positive),
    Setting("atlas_url", "str", "", "Node: base URL of the ECCC Atlas (Drupal JSON:API) that `ncc atlas push` "
            "and the scheduled push send registered organisations to; empty = no push.",
            roles=("node",), check=_url),
    Setting("atlas_api_key_file", "str", "", "Node: file holding the Atlas API key (mode 0600; default "
            "`<data-dir>/keys/atlas-api-key`). The key is never written into config.toml.", roles=("node",)),
    Setting("atlas_timeout_s", "int", 30, "Node: longest time one Atlas request may take, seconds.",
            roles=("node",), check=_positive),
    Setting("atlas_push_interval_s", "int", 900, "Node: seconds between scheduled Atlas pushes while "
            "`atlas_url` is set (a registration decision also queues one at once).",
            roles=("node",), check=_positive),
    Setting("atlas_terms_ttl_s", "int", 86400, "Node: how long the Atlas's taxonomy terms are cached, "
            "seconds (a term not found refreshes them at once).", roles=("node",), check=_positive),
    # node: the gatekeeper (DESIGN §12)
    Setting("trusted_proxies", "list", [], "Node: reverse proxies (IP addresses or CIDR networks) whose "
            "`X-Forwarded-For` names the client for the application limits; empty = the peer address is the "
            "client.", roles=("node",), check=_networks),
    Setting("application_rate_per_address", "int", 10, "Node: applications accepted per client address per "
            "hour (429 `rate_limited` above).", roles=("node",), check=_positive),
    Setting("application_rate_per_email", "int", 10, "Node: applications (and manage-link requests) accepted "
            "per applicant e-mail address per hour.", roles=("node",), check=_positive),
    Setting("confirmation_mails_per_hour", "int", 200, "Node: global cap on confirmation and manage-link "
            "mails per hour, so the node never becomes a mail cannon.", roles=("node",), check=_positive),
    Setting("application_ttl_s", "int", 48 * 3600, "Node: lifetime of a confirmation link; unconfirmed "
            "applications are purged after it.", roles=("node",), check=_max_days(30)),
    Setting("manage_link_ttl_s", "int", 90 * 86400, "Node: lifetime of an applicant's manage link (a new one "
            "can be requested by e-mail at any time).", roles=("node",), check=_max_days(3650)),
    Setting("assessor_emails", "list", [], "Node: addresses told of each newly confirmed application.",
            roles=("node",), check=_emails),
    Setting("mail_from", "str", "", "Node: sender of the node's mails (`From`); empty = "
            "`noreply@<host of url>`.", roles=("node",), check=_mail_from),
    Setting("smtp_url", "str", "", "Node: SMTP server, `smtp://[user@]host:port` (STARTTLS when offered) or "
            "`smtps://…`; empty = mails are written as .eml files to `<data-dir>/outbox/`.", roles=("node",),
            check=_smtp),
    Setting("smtp_password_file", "str", "", "Node: file holding the SMTP password (mode 0600); never put "
            "the password in config.toml.", roles=("node",)),
    Setting("mail_retry_max_s", "int", 3600, "Node: longest wait between two attempts at a mail that could "
            "not be sent (the wait doubles from 30 s); nothing is dropped.", roles=("node",), check=_positive),
    Setting("smtp_timeout_s", "int", 30, "Node: longest time one SMTP conversation step (connect, command) "
            "may take, seconds; the mail then waits for its next attempt.", roles=("node",), check=_positive),
    Setting("mail_language", "str", "", "Node: language of the mails (`en`, `de`); empty = the country's "
            "language when a translation exists, else English.", roles=("node",),
            check=_choice("", "en", "de")),
    # hub
    Setting("pull_interval_s", "int", 300, "Hub: seconds between scheduled pulls of each node.",
            roles=("hub",), check=_positive),
    Setting("pull_jitter_s", "int", 30, "Hub: random jitter added to each scheduled pull, seconds.",
            roles=("hub",)),
    Setting("pull_timeout_s", "int", 60, "Hub: longest time one feed page request may take (connect, answer "
            "and whole body), seconds.",
            roles=("hub",), check=_positive),
    Setting("pull_batch", "int", 1000, "Hub: records asked for per feed page (≤ 1000).", roles=("hub",),
            check=lambda v: None if 1 <= v <= 1000 else "must be between 1 and 1000"),
    Setting("verify_workers", "int", 0, "Hub: verification worker processes; pages are checked this many "
            "at a time ahead of the writer (0 = one per core beyond the first). Each costs ~90 MB.",
            roles=("hub",), check=lambda v: None if 0 <= v <= 64 else "must be between 0 and 64"),
    Setting("backoff_min_s", "int", 5, "Hub: wait before pulling a node again after a failed pull; it "
            "doubles with each failure in a row, up to `backoff_max_s`. Failures `ncc sync` records count "
            "too.", roles=("hub",), check=_positive),
    Setting("backoff_max_s", "int", 3600, "Hub: longest wait between pulls of a failing node.",
            roles=("hub",), check=_positive),
    Setting("stale_after_s", "int", 1800, "Hub: a node whose last successful pull is older is `stale`.",
            roles=("hub",), check=_positive),
    Setting("unreachable_after", "int", 3, "Hub: consecutive failed pulls after which a node is "
            "`unreachable`.", roles=("hub",), check=_positive),
    Setting("directory_ttl_s", "int", 7 * 86400, "Hub: validity of a signed directory (≤ 7 days).",
            roles=("hub",), check=_max_days(7)),
    Setting("invite_ttl_s", "int", 86400, "Hub: validity of an enrollment invite token.",
            roles=("hub",), check=_max_days(7)),
    Setting("key_grace_s", "int", 7 * 86400, "Hub: how long a rotated-out node key stays valid.",
            roles=("hub",), check=_positive),
    # hub: a node is an untrusted peer (DESIGN §10; node/services/fedclient.py)
    Setting("allow_private_node_urls", "bool", False, "Hub: allow node URLs that resolve to non-global "
            "addresses (loopback, private, link-local). Only for a demo, tests or a one-host network.",
            roles=("hub",)),
    Setting("live_answer_max_bytes", "int", 1024 * 1024, "Hub: largest live-query answer read from a node "
            "(compressed or decompressed), bytes.", roles=("hub",), check=_positive),
    Setting("pull_inflight_max_bytes", "int", 128 * 1024 * 1024, "Hub: bytes of feed pages held in flight "
            "across all concurrent pulls; a pull past it waits for others.", roles=("hub",), check=_positive),
    Setting("quarantine_max_rows", "int", 10_000, "Hub: quarantine rows kept per node (oldest evicted).",
            roles=("hub",), check=_positive),
    Setting("quarantine_max_bytes", "int", 100 * 1024 * 1024, "Hub: quarantine evidence bytes kept per node "
            "(oldest evicted).", roles=("hub",), check=_positive),
    Setting("notify_min_interval_s", "int", 2, "Hub: a node's notifications closer together than this are "
            "coalesced into one pull.", roles=("hub",), check=_positive),
    Setting("live_rate_per_min", "int", 30, "Hub: anonymous `live=true` searches per client address per "
            "minute (429 above).", roles=("hub",), check=_positive),
    Setting("live_max_concurrent", "int", 4, "Hub: anonymous `live=true` searches running at once "
            "(429 above).", roles=("hub",), check=_positive),
)

SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Validated settings of one instance. Build with :func:`load_settings`.

    The fields carry no defaults: ``SETTINGS`` is the only place a default is written (and
    :func:`build_settings` the only place one is applied), so the two cannot disagree.
    """

    data_dir: Path
    role: str
    country: str
    host: str
    port: int
    url: str
    db: str
    db_password_file: str
    db_pool_max: int
    max_body_bytes: int
    max_form_bytes: int
    log_level: str
    log_format: str
    token_ttl_s: int
    token_max_ttl_s: int
    session_ttl_s: int
    service_token_ttl_s: int
    service_call_rate: int
    live_search_rate: int
    allowed_countries: tuple[str, ...]
    clock_skew_s: int
    search_max_limit: int
    search_accelerator: bool
    malloc_mmap_threshold_kib: int
    live_timeout_ms: int
    erasure_purge_s: int
    erasure_vacuum_full: bool
    notify_retry_s: int
    notify_backoff_max_s: int
    audit_interval_s: int
    audit_max_proofs: int
    atlas_url: str
    atlas_api_key_file: str
    atlas_timeout_s: int
    atlas_push_interval_s: int
    atlas_terms_ttl_s: int
    trusted_proxies: tuple[str, ...]
    application_rate_per_address: int
    application_rate_per_email: int
    confirmation_mails_per_hour: int
    application_ttl_s: int
    manage_link_ttl_s: int
    assessor_emails: tuple[str, ...]
    mail_from: str
    smtp_url: str
    smtp_password_file: str
    mail_retry_max_s: int
    smtp_timeout_s: int
    mail_language: str
    pull_interval_s: int
    pull_jitter_s: int
    pull_timeout_s: int
    pull_batch: int
    verify_workers: int
    backoff_min_s: int
    backoff_max_s: int
    stale_after_s: int
    unreachable_after: int
    directory_ttl_s: int
    invite_ttl_s: int
    key_grace_s: int
    feed_page_max_bytes: int
    feed_line_max_bytes: int
    allow_private_node_urls: bool
    live_answer_max_bytes: int
    pull_inflight_max_bytes: int
    quarantine_max_rows: int
    quarantine_max_bytes: int
    notify_min_interval_s: int
    live_rate_per_min: int
    live_max_concurrent: int
    #: The database password (from NCC_DB_PASSWORD or the password file): never a setting in config.toml.
    db_password: str = field(default="", repr=False)
    #: The Atlas API key from NCC_ATLAS_API_KEY (else the file atlas_api_key_file names is read at push).
    atlas_api_key: str = field(default="", repr=False)

    @property
    def base_url(self) -> str:
        """The public base URL, without trailing slash."""
        return (self.url or f"http://127.0.0.1:{self.port}").rstrip("/")

    @property
    def db_url(self) -> str:
        """The tortoise database URL (SQLite in the data dir unless `db` is set)."""
        db = with_password(self.db, self.db_password)
        return database_url(db, self.data_dir, self.db_pool_max, self.role)

    @property
    def instance_id(self) -> str:
        """The identity used as JWT issuer/audience: ``node:XX`` or ``hub``."""
        return "hub" if self.role == "hub" else f"node:{self.country}"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "keys" / "instance.pem"

    @property
    def atlas_api_key_path(self) -> Path:
        """The Atlas API-key file (``atlas_api_key_file``, relative to the data dir, or the default)."""
        path = Path(self.atlas_api_key_file) if self.atlas_api_key_file else Path("keys") / "atlas-api-key"
        return path if path.is_absolute() else self.data_dir / path

    @property
    def session_secret_path(self) -> Path:
        """The portal's CSRF secret (made on first use, 0600)."""
        return self.data_dir / "keys" / "session-secret"

    @property
    def outbox_dir(self) -> Path:
        """Where mails go as .eml files when no `smtp_url` is set."""
        return self.data_dir / "outbox"


#: Secrets are read from a file or the environment, never from config.toml: name → environment variable.
SECRET_ENV = {"db_password": "NCC_DB_PASSWORD", "atlas_api_key": "NCC_ATLAS_API_KEY"}
DB_PASSWORD_FILE = Path("keys") / "db-password"


def split_db_password(db: str) -> tuple[str, str]:
    """``postgres://user:secret@host/db`` → (``postgres://user@host/db``, ``secret``), percent-decoded."""
    m = re.match(r"^([a-z]+://)([^:@/]*):([^@/]*)@(.*)$", db, re.DOTALL)
    if not m:
        return db, ""
    return f"{m.group(1)}{m.group(2)}@{m.group(4)}", unquote(m.group(3))


def with_password(db: str, password: str) -> str:
    """The database URL with ``password`` put in (when it has none of its own)."""
    if not password or not db.startswith(("postgres://", "postgresql://")):
        return db
    scheme, rest = db.split("://", 1)
    user, at, host = rest.partition("@")
    if not at:
        user, host = "", rest
    if ":" in user:
        return db
    return f"{scheme}://{user}:{quote(password, safe='')}@{host}"


def read_db_password(data_dir: Path, password_file: str, env: Mapping[str, str]) -> str:
    """The database password: ``NCC_DB_PASSWORD``, else the password file (checked like a key).

    Raises:
        ConfigError: the file is missing (when named), unreadable or readable by group or others.
    """
    if env.get(SECRET_ENV["db_password"]):
        return env[SECRET_ENV["db_password"]]
    path = Path(password_file) if password_file else data_dir / DB_PASSWORD_FILE
    if not path.is_absolute():
        path = data_dir / path
    if not password_file and not path.exists():
        return ""
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(
                f"db_password_file: {path} is readable by group or others; run: chmod 600 {path}")
        return path.read_text(encoding="utf-8").strip("\r\n")
    except FileNotFoundError as exc:
        raise ConfigError(f"db_password_file: {path} not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"db_password_file: {path} unreadable: {exc}") from exc


# Several processes share one SQLite file (`ncc serve` and the CLI next to it: sync, import, token…).
# A writer waits this long for another one's transaction instead of failing with "database is
# locked"; sqlite3's default of 5 s is shorter than a busy hub's back-to-back ingest transactions
# can keep the lock from a newcomer (seen in the e2e crash test: `ncc sync` beside a serving hub).
SQLITE_BUSY_TIMEOUT_MS = 30_000


def database_url(db: str, data_dir: Path, pool_max: int = 10, role: str = "node") -> str:
    """Translate the `db` setting to a tortoise URL (query parameters of a SQLite URL become PRAGMAs).

    A hub's SQLite database gets ``synchronous=NORMAL`` unless the URL sets ``synchronous`` itself:
    in WAL mode that skips the fsync at every commit (5 ms each here; several per pull) and can lose
    only the last commits on power loss, never corrupt. The hub's state is derived from the nodes'
    feeds, and its records and cursor commit together, so a lost commit is simply pulled again. A
    node keeps SQLite's default (FULL): a signed version it published and then lost could be
    re-issued with other content under the same version number (equivocation).
    """
    if not db:
        db = f"sqlite://{(data_dir / 'ncc.db').resolve()}"
    if db.startswith(("postgres://", "postgresql://")):
        rest = db.split("://", 1)[1]
        sep = "&" if "?" in rest else "?"
        extra = "" if "maxsize=" in rest else f"{sep}minsize=1&maxsize={pool_max}"
        return f"asyncpg://{rest}{extra}"
    if db.startswith("sqlite://") and "busy_timeout=" not in db:
        db = f"{db}{'&' if '?' in db else '?'}busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"
    if role == "hub" and db.startswith("sqlite://") and "synchronous=" not in db:
        return f"{db}{'&' if '?' in db else '?'}synchronous=NORMAL"
    return db


def _coerce(setting: Setting, raw: Any, source: str) -> Any:
    key = setting.key
    kind = setting.kind
    try:
        if kind == "str":
            if not isinstance(raw, str):
                raise ConfigError(f"{key}: must be a string ({source})")
            return raw
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, str):
                return int(raw.strip())
            if isinstance(raw, int):
                return raw
            raise ValueError
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return raw.lower() in ("1", "true", "yes", "on")
            raise ValueError
        if kind == "list":
            if isinstance(raw, str):
                return tuple(x.strip() for x in raw.split(",") if x.strip())
            if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
                return tuple(raw)
            raise ValueError
    except ValueError as exc:
        raise ConfigError(f"{key}: must be {'an' if kind == 'int' else 'a'} {kind} ({source}: {raw!r})") from exc
    raise ConfigError(f"{key}: unsupported kind {kind}")  # pragma: no cover


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``NCC_*`` variables, for child instances configured by
    their own config.toml alone (a stray ``NCC_DB`` or ``NCC_PORT`` would otherwise point every
    child at one database or one port)."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if not k.startswith(ENV_PREFIX)}


def read_config_file(data_dir: Path) -> dict[str, Any]:
    """Read ``<data-dir>/config.toml``.

    Raises:
        ConfigError: the file is missing or not valid TOML.
    """
    path = data_dir / CONFIG_FILE
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config: {path} not found (run `ncc init` first)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid TOML: {exc}") from exc


def load_settings(
    data_dir: Path | str,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load, override (file < ``NCC_*`` env < explicit overrides) and validate the settings.

    Raises:
        ConfigError: with the offending key first in the message.
    """
    data_dir = Path(data_dir)
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    file_values = read_config_file(data_dir)
    for key, raw in file_values.items():
        if key in SECRET_ENV:
            raise ConfigError(f"{key}: secrets are never read from config.toml: put it in {key}_file "
                              f"(a file of mode 0600) or {SECRET_ENV[key]}")
        if key not in SETTINGS_BY_KEY:
            raise ConfigError(f"{key}: unknown setting in {data_dir / CONFIG_FILE}")
        values[key] = _coerce(SETTINGS_BY_KEY[key], raw, "config.toml")
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in ("NCC_TEST_PG",):
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key in SETTINGS_BY_KEY:
            values[key] = _coerce(SETTINGS_BY_KEY[key], raw, f"environment {name}")
    for key, raw in (overrides or {}).items():
        if raw is None:
            continue
        if key not in SETTINGS_BY_KEY:
            raise ConfigError(f"{key}: unknown setting")
        values[key] = _coerce(SETTINGS_BY_KEY[key], raw, "command line")
    if split_db_password(str(file_values.get("db", "")))[1]:
        raise ConfigError(f"db: {data_dir / CONFIG_FILE} holds a database password: remove it from the URL "
                          f"and put it in {data_dir / DB_PASSWORD_FILE} (chmod 600) or "
                          f"{SECRET_ENV['db_password']}")
    password = read_db_password(data_dir, str(values.get("db_password_file", "")), env)
    settings = build_settings(data_dir, values, db_password=password)
    atlas_key = env.get(SECRET_ENV["atlas_api_key"], "").strip()
    if any(c in atlas_key for c in "\r\n"):
        raise ConfigError(f"atlas_api_key: {SECRET_ENV['atlas_api_key']} must hold the key on one line")
    return replace(settings, atlas_api_key=atlas_key) if atlas_key else settings


def build_settings(data_dir: Path, values: Mapping[str, Any], db_password: str = "") -> Settings:
    """Validate a mapping of setting values into :class:`Settings`.

    Raises:
        ConfigError: with the offending key first in the message.
    """
    merged: dict[str, Any] = {}
    for setting in SETTINGS:
        value = values.get(setting.key, setting.default)
        if value is None:
            raise ConfigError(f"{setting.key}: required")
        if setting.kind == "list" and isinstance(value, list):
            value = tuple(value)
        if setting.check is not None:
            problem = setting.check(value)
            if problem:
                raise ConfigError(f"{setting.key}: {problem} (got {value!r})")
        merged[setting.key] = value
    role = merged["role"]
    if role == "node":
        if not merged["country"]:
            raise ConfigError("country: required for the node role")
        if merged["country"] not in merged["allowed_countries"]:
            raise ConfigError(f"country: {merged['country']} is not in allowed_countries")
    if merged["token_ttl_s"] > merged["token_max_ttl_s"]:
        raise ConfigError(f"token_ttl_s: must not exceed token_max_ttl_s ({merged['token_max_ttl_s']})")
    if merged["session_ttl_s"] > merged["token_max_ttl_s"]:
        raise ConfigError(f"session_ttl_s: must not exceed token_max_ttl_s ({merged['token_max_ttl_s']})")
    for code in merged["allowed_countries"]:
        if not COUNTRY_RE.match(code):
            raise ConfigError(f"allowed_countries: {code!r} is not an ISO 3166-1 alpha-2 code")
        if code not in EU_COUNTRIES + EEA_COUNTRIES:  # the countries vocabulary records are checked against
            raise ConfigError(f"allowed_countries: {code} is not an EU or EEA country (Greece is GR)")
    return Settings(data_dir=data_dir, db_password=db_password, **merged)


def render_config(values: Mapping[str, Any]) -> str:
    """Render a config.toml holding the given values, each preceded by its documentation."""
    lines = ["# NCC federation instance configuration (see config/*.example.toml for every key)."]
    if split_db_password(str(values.get("db", "")))[1]:
        raise ValueError("a database password must not be written into config.toml")
    for setting in SETTINGS:
        if setting.key not in values or values[setting.key] is None:
            continue
        lines.append(f"# {setting.doc}")
        lines.append(f"{setting.key} = {_toml_value(values[setting.key])}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
