"""Drives belfry serve with the healthchecks-io package from PyPI, as its users do: every call
of its sync client, and one of its async client. Its pydantic models check belfry's JSON.

Usage: healthchecks_io_client.py BASE_URL API_KEY PING_KEY
Exits 0 after printing "ok"; an assertion or a client error fails it.
"""

import asyncio
import sys

from healthchecks_io import AsyncClient, CheckCreate, CheckUpdate, Client
from healthchecks_io.client.exceptions import CheckNotFoundError, HCAPIAuthError

base, api_key, ping_key = sys.argv[1:4]


def client(key=api_key):
    return Client(
        api_key=key,
        ping_key=ping_key,
        api_url=f"{base}/api/",
        ping_url=f"{base}/ping/",
        api_version=3,
    )


c = client()

# Create: the slug is made from the name.
check = c.create_check(CheckCreate(name="Py Backup", tags="py nightly", timeout=3600, grace=120))
assert check.slug == "py-backup", check
assert (check.timeout, check.grace, check.status) == (3600, 120, "new"), check
assert check.uuid and check.ping_url.endswith(check.uuid), check

# Upsert by name: the same check (CheckCreate sends every field, so the tags again).
again = c.create_check(
    CheckCreate(name="Py Backup", tags="py nightly", timeout=3600, grace=120, unique=["name"])
)
assert again.uuid == check.uuid, (again, check)

# Read.
assert [x.slug for x in c.get_checks(tags=["py"])] == ["py-backup"]
assert c.get_checks(tags=["nope"]) == []
assert c.get_check(check.uuid).name == "Py Backup"

# Pings, by uuid and by slug.
assert c.start_ping(slug="py-backup") == (True, "OK")
assert c.success_ping(uuid=check.uuid, data="all fine") == (True, "OK")
assert c.fail_ping(slug="py-backup", data="boom")[0]
assert c.exit_code_ping(3, uuid=check.uuid)[0]
got = c.get_check(check.uuid)
assert (got.n_pings, got.status) == (4, "down"), got
pings = c.get_check_pings(check.uuid)
assert [p.type for p in pings] == ["fail", "fail", "success", "start"], pings
assert pings[2].duration is not None and pings[2].duration >= 0, pings[2]
assert pings[0].number_of_pings == 4 and pings[0].remote_addr == "127.0.0.1", pings[0]
assert [f.up for f in c.get_check_flips(check.uuid)] == [0, 1]
assert len(c.get_check_flips(check.uuid, seconds=3600)) == 2

# Update, pause.
updated = c.update_check(check.uuid, CheckUpdate(desc="the nightly dump", grace=300))
assert (updated.desc, updated.grace) == ("the nightly dump", 300), updated
assert c.pause_check(check.uuid).status == "paused"

# Channels.
names = sorted(i.name for i in c.get_integrations())
assert names == ["hook"], names

# The read-only key reads, and does not write.
ro = client("ro-key-for-the-python-client-000")
seen = ro.get_checks()
assert all(x.uuid is None and x.unique_key for x in seen), seen
try:
    ro.create_check(CheckCreate(name="nope"))
    raise AssertionError("the read-only key created a check")
except HCAPIAuthError:
    pass

# The async client.
async def listed():
    async with AsyncClient(
        api_key=api_key, api_url=f"{base}/api/", api_version=3
    ) as a:
        return [x.slug for x in await a.get_checks()]


assert "py-backup" in asyncio.run(listed())

# Delete.
assert c.delete_check(check.uuid).slug == "py-backup"
try:
    c.get_check(check.uuid)
    raise AssertionError("a deleted check was found")
except CheckNotFoundError:
    pass

print("ok")
