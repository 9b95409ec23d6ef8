"""The SOC's mail commands: `#command argument` lines at the top of a mail (R2.2).

    #priority 2          set the priority (1–4); also #p2
    #state waiting       open | waiting | resolved | closed; also #open #wait #resolve #close
    #assign me           assign the SR to an analyst (an address of SOC staff, or "me")
    #escalate reason     open an escalation (§3.5.5); #deescalate [reason] closes it
    #note                the whole mail is an internal note, never sent to the customer
    #sow-sent            SecureHands/scan: the Statement of Work was sent (meets its target)
    #sow-agreed units=6 fixed=3 rate=1.5    SecureHands: the SOW agreed, its units reserved
    #sow-agreed ips=12 [max-ips=N] [ordered=DATE]    scan: signed, scheduling target starts
    #sow-finished        the SOW is done or withdrawn: what it did not use is released
    #session-request     a session asked for: the scheduling target starts (§3.11.5)
    #scheduled [N] 2026-12-01T09:00/12:00   a session (or scan) scheduled; meets the target
    #delivered [N] 2026-12-01T09:00/12:30   the session took place: units, statement
    #cancel [N] [beyond-control]            cancelled by the customer, or to be rearranged
    #no-show [N]         not attended: its units are forfeited
    #credit 2 [session=N] reason   #confirm [session=N] [reason]    a query decided
    #purchase 20 [DATE] [REF]   #balance   #sessions   #report   #reviewed [DATE]
    #remediation-request   #reschedule START/END                   (scans)

Commands are read only from the first lines, up to the first line that is not a command;
what follows is the text of the mail. Only SOC staff may give them: from anyone else the same
lines are ordinary text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(r"^\s*#([A-Za-z][A-Za-z0-9-]*)\b[ \t]*(.*?)\s*$")
# "# note": a known command with a space after its "#"; "# Summary" (a Markdown heading) is text
_SPACED = re.compile(r"^\s*#[ \t]+([A-Za-z][A-Za-z0-9-]*)\b[ \t]*(.*?)\s*$")
# What mail clients put around or before a line the writer typed as "#note": invisible format
# characters (zero-width space and joiners, word joiner, BOM), and the "*…*" or "_…_" that a
# plain-text part has for bold or italics (Gmail writes a bold "#note" as "*#note*").
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_EMPHASIS = re.compile(r"^(\s*)([*_]{1,2})(#[^*_]*?)\2\s*$")
# The full-width and small number signs of East Asian input methods are the same "#"
_HASHES = {ord("\uff03"): "#", ord("\ufe5f"): "#"}

# spelling -> (command, fixed argument or None)
ALIASES: dict[str, tuple[str, str | None]] = {
    "priority": ("priority", None),
    "prio": ("priority", None),
    "p1": ("priority", "1"),
    "p2": ("priority", "2"),
    "p3": ("priority", "3"),
    "p4": ("priority", "4"),
    "state": ("state", None),
    "open": ("state", "open"),
    "reopen": ("state", "open"),
    "wait": ("state", "waiting"),
    "waiting": ("state", "waiting"),
    "resolve": ("state", "resolved"),
    "resolved": ("state", "resolved"),
    "close": ("state", "closed"),
    "closed": ("state", "closed"),
    "assign": ("assign", None),
    "escalate": ("escalate", None),
    "deescalate": ("deescalate", None),
    "de-escalate": ("deescalate", None),
    "note": ("note", None),
    "sow-sent": ("sow_sent", None),
    "sow-agreed": ("sow_agreed", None),
    "sow-signed": ("sow_agreed", None),
    "scheduled": ("scheduled", None),
    "sow-finished": ("sow_finished", None),
    "sow-withdrawn": ("sow_finished", None),
    "session-request": ("session_request", None),
    "session-requested": ("session_request", None),
    "delivered": ("delivered", None),
    "cancel": ("cancel", None),
    "cancelled": ("cancel", None),
    "no-show": ("no_show", None),
    "noshow": ("no_show", None),
    "credit": ("credit", None),
    "confirm": ("confirm", None),
    "purchase": ("purchase", None),
    "balance": ("balance", None),
    "sessions": ("sessions", None),
    "report": ("report", None),
    "reviewed": ("reviewed", None),
    "remediation-request": ("remediation_request", None),
    "reschedule": ("reschedule", None),
}


@dataclass(frozen=True)
class Command:
    name: str  # canonical: priority, state, assign, escalate, deescalate, note, sow_sent …
    argument: str
    line: str  # as written, for the confirmation


@dataclass(frozen=True)
class Commands:
    commands: tuple[Command, ...]
    unknown: tuple[str, ...]  # lines that looked like commands but are none
    text: str  # the mail without its command lines

    @property
    def note(self) -> bool:
        return any(c.name == "note" for c in self.commands)


def read_commands(text: str, aliases: dict[str, tuple[str, str | None]] | None = None) -> Commands:
    """Split the leading command lines off `text`; `aliases` another table of commands than the
    SOC's (the SUS admins' `#approve` and `#deny`, parsers/sus.py)."""
    aliases = ALIASES if aliases is None else aliases
    lines = text.replace("\r\n", "\n").split("\n")
    commands: list[Command] = []
    unknown: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
            continue
        found = _command_line(line, aliases)
        if not found:
            break
        word, argument = found.group(1).lower(), found.group(2)
        if word in aliases:
            name, fixed = aliases[word]
            commands.append(Command(name, fixed if fixed is not None else argument, line.strip()))
        else:
            unknown.append(line.strip())
        index += 1
    if not commands and not unknown:
        return Commands((), (), text.strip())
    return Commands(tuple(commands), tuple(unknown), "\n".join(lines[index:]).strip())


def _command_line(line: str, aliases: dict[str, tuple[str, str | None]]) -> re.Match[str] | None:
    """The line as a command (group 1 its word, group 2 its argument), or None if it is text."""
    line = line.translate(_INVISIBLE).translate(_HASHES)
    emphasised = _EMPHASIS.match(line)
    if emphasised:
        line = emphasised.group(1) + emphasised.group(3)
    found = _LINE.match(line)
    if found:
        return found
    spaced = _SPACED.match(line)
    return spaced if spaced and spaced.group(1).lower() in aliases else None
