"""Shared text for the trust-file tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

EXAMPLE = """\
# custody.toml: who this project trusts to publish its dependencies.
# Review changes to this file like code: every entry is a decision someone made.

[policy]
cooldown = "48h"                 # releases younger than this are held (units: m, h, d, w; "0" disables)
new-packages = "review"          # or "trust-on-first-use"

[policy.tiers.critical]          # blast radius decides how hard a change is judged
min-fan-in = 20
hold-at = "medium"               # severity at which a finding holds: info|low|medium|high|critical
on-custody-change = "hold"       # hold | warn | review

[[trusted-everywhere]]           # an organisation's own accounts and CI identities
custodian = "github:my-org/*"

[[trusted."npm:event-stream"]]
custodian = "npm:user/dominictarr"
since = 2011-06-01               # TOML date or datetime; optional
until = 2018-09-01               # optional
note = "baseline written by custody init on 2018-09-01"

[[approved."npm:event-stream"]]
version = "4.0.1"
by = "alice@example.com"
reason = "read the diff: the flatmap-stream dependency is gone"
at = 2018-11-27
"""  # noqa: E501 (the example as users write it)
