"""Operator experience (issue 19): the back-off of a failing node lives in the database.

``hub_pull_state.retry_at`` (Unix time) is written by whichever process recorded the failed pull — the
serving hub or a one-shot ``ncc sync`` — and the serving hub retries every node whose time has come
(node.services.pullstatus), so a failure one process saw is retried by the other on the same schedule."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("ncc", "0013_gatekeeper")]

    initial = False

    operations = [
        ops.AddField(model_name="PullState", name="retry_at", field=fields.BigIntField(default=0)),
    ]
