"""``ncc enroll`` — join the federation with a one-time invitation from the hub (also: re-enroll after a
key compromise, which gives the node a new key)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from node.commands.base import CommandError, add_data_dir, run_with_db, settings_for
from node.context import Keyring, build_registry, utc_now


def register(sub: Any) -> None:
    p = sub.add_parser("enroll", help="enroll this node with the hub (one-time token from `ncc hub invite`)")
    add_data_dir(p)
    p.add_argument("--hub", required=True, metavar="URL", help="the hub's base URL")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--token", metavar="T",
                        help="the invitation token, or - to read it from standard input (a token on the "
                             "command line is visible to other users in ps)")
    source.add_argument("--token-file", metavar="F", help="read the invitation token from this file")
    p.add_argument("--new-key", action="store_true",
                   help="enroll a new key and retire the current one (made anyway when the key is revoked)")
    p.set_defaults(run=run)


#: An invitation is a JWT of a few hundred bytes; anything much larger is not one.
MAX_TOKEN_BYTES = 16_384


def read_token(value: str | None, path: str | None) -> str:
    """The invitation from ``--token T``, ``--token -`` (standard input) or ``--token-file F``.

    Raises:
        CommandError: the file cannot be read, or it (or the input) is empty, too large or several lines.
    """
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_TOKEN_BYTES + 1)
        except OSError as exc:
            raise CommandError(f"--token-file: cannot read {path}: {exc.strerror}") from exc
        where = path
    elif value == "-":
        raw = sys.stdin.buffer.read(MAX_TOKEN_BYTES + 1)
        where = "standard input"
    else:
        return str(value).strip()
    if len(raw) > MAX_TOKEN_BYTES:
        raise CommandError(f"the token in {where} is larger than {MAX_TOKEN_BYTES} bytes: not an invitation")
    try:
        lines = [line.strip() for line in raw.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise CommandError(f"the token in {where} is not UTF-8 text") from exc
    if len(lines) != 1:
        raise CommandError(
            f"{where} must hold the invitation token alone on one line (found {len(lines)} lines)")
    return lines[0]


def run(args: argparse.Namespace) -> int:
    from node.services.nodefed import Enrolled, FederationError, NodeFederation
    from node.services.publish import Publisher
    from node.services.resign import resign_after_revocation, revoked_keys
    from node.services.search import SearchService

    settings = settings_for(args.data_dir)
    if settings.role != "node":
        raise CommandError("only a node enrolls (this data dir is a hub)")
    token = read_token(args.token, args.token_file)
    keyring = Keyring(settings)
    fed = NodeFederation(settings, keyring.key, utc_now)

    async def work() -> tuple[Enrolled, list[str], str | None]:
        try:
            enrolled = await fed.enroll_key(args.hub, token, new_key=args.new_key)
        except FederationError as exc:
            raise CommandError(str(exc)) from exc
        try:
            # What a revoked key signed and the hub does not hold (signed after the revocation, not pulled
            # before it, or refused): sign it again with the key just enrolled, then notify.
            publisher = Publisher(settings.country, keyring.key, build_registry(), utc_now, index=SearchService())
            revoked = revoked_keys(enrolled.directory, settings.country)
            hub_view = await fed.hub_view() if revoked else None
            resigned = await resign_after_revocation(publisher, revoked, hub_view)
            notify_error = None
            if not await fed.notify_if_needed():
                notify_error = "the hub was not notified; it pulls on its schedule"
            return enrolled, resigned, notify_error
        finally:
            await fed.close()

    enrolled, resigned, notify_error = run_with_db(settings, work)
    print(f"enrolled {settings.country} ({enrolled.kid}) with {args.hub}; directory serial {enrolled.directory['serial']}")
    if enrolled.replaced_kid:
        print(f"new key {enrolled.kid}; the previous key {enrolled.replaced_kid} is compromised: it verifies "
              "nothing any more (keys/compromised/)")
    if resigned:
        print(f"signed again with the new key: {len(resigned)} record(s) signed by the revoked key that the hub"
              " does not hold")
    if notify_error:
        print(notify_error)
    return 0
