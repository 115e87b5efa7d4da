"""Read an Urgent Action's pasted text into the fields of a new campaign, for staff to review.

Urgent Actions arrive as text copied out of PDFs and emails: headings in capitals, addresses
that lost their line breaks, underscores where a form had blanks to fill in. The parser is a
best guess that never fails; anything it cannot find is left empty for staff to type, and
nothing is saved until they submit the form it pre-fills.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from markupsafe import escape

MAX_PASTE_CHARACTERS = 30_000  # the longest seed is 8,400; forms stop at 64 KiB

# Capitals kept when a heading in capitals is turned into a sentence.
ACRONYMS = {"US", "USA", "UK", "UN", "EU", "ICE", "DHS", "TPS", "CBP", "UA", "UNHCR", "CECOT"}
# Forms of address that open a name but are not part of it.
HONORIFICS = (
    "her excellency",
    "his excellency",
    "the honorable",
    "the honourable",
    "mr.",
    "mr",
    "mrs.",
    "mrs",
    "ms.",
    "ms",
    "dr.",
    "dr",
)
# Offices that open a name line when the title came first ("President Donald Trump").
TITLES_BEFORE_NAME = (
    "acting director",
    "attorney general",
    "prime minister",
    "president",
    "governor",
    "minister",
    "secretary",
    "director",
    "ambassador",
    "senator",
)

_REFERENCE = re.compile(r"\bUA\s*\d{1,4}/\d{2}\b")
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_DATE = rf"(?:\d{{1,2}}\s+(?:{_MONTHS})\s+\d{{4}}|(?:{_MONTHS})\s+\d{{1,2}},?\s+\d{{4}})"
_DEADLINE = re.compile(
    rf"take\s+action\b[^\n]{{0,60}}?\b(?:before|until|by)\b\s*:?\s*({_DATE})", re.IGNORECASE
)
_PEOPLE = re.compile(r"^\s*names?\s+and\s+pronouns?\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_LANGUAGE = re.compile(r"preferred\s+language[^:\n]*:\s*([A-Za-z ,]+?)\s*[.\n]", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SALUTATION_LINE = re.compile(r"^\s*(dear\s+[^\n]{1,200}?)\s*[,:]?\s*$", re.IGNORECASE)
_SIGN_OFF = re.compile(r"^\s*(yours\s+(sincerely|faithfully|truly)|sincerely)\b", re.IGNORECASE)
_RULE = re.compile(r"^[\s_\-–—]*$")  # blank lines and the blanks of a printed form
_NOISE = re.compile(r"^\s*(date|webform\*?|tel|phone|fax)\s*:", re.IGNORECASE)
_EXPLICIT_SALUTATION = re.compile(r"^\s*salutation\s*:\s*(.+)$", re.IGNORECASE)
_ADDITIONAL_TARGETS = re.compile(r"^\s*additional\s+targets\s*$", re.IGNORECASE)
_SECTION_END = re.compile(
    r"^\s*(additional\s+information|preferred\s+language|please\s+take\s+action|name\s+and\s+pronoun)",
    re.IGNORECASE,
)
_TAKE_ACTION = re.compile(r"^\s*(\d+\.\s*)?take\s+action\b", re.IGNORECASE)
_STREET_NUMBER = re.compile(r"\s(?=\d{1,6}\s+[A-Z])")


@dataclass
class ParsedTarget:
    name: str
    honorific: str = ""  # "Her Excellency": how the text styles them, kept to match salutations
    salutation: str = ""
    title: str = ""
    organisation: str = ""
    email: str = ""
    postal_address: str = ""


@dataclass
class ParsedUrgentAction:
    title: str = ""
    reference: str = ""
    summary: str = ""  # plain text, paragraphs separated by blank lines
    people_at_risk: str = ""
    preferred_language: str = ""
    deadline: date | None = None
    letter_body: str = ""  # with {salutation}, {supporter_name}, {supporter_town}
    targets: list[ParsedTarget] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return slugify(self.title)

    def campaign_fields(self) -> dict:
        """Return the new campaign's fields as the create form takes them, a draft letter."""
        paragraphs = [self.summary]
        if self.people_at_risk:
            paragraphs.append(f"People at risk: {self.people_at_risk}")
        return {
            "title": self.title,
            "slug": self.slug,
            "reference": self.reference,
            # The summary is limited HTML: the pasted text goes in as text, escaped.
            "summary": "".join(f"<p>{escape(p)}</p>" for p in paragraphs if p),
            "kind": "letter",
            "status": "draft",
            "deadline_date": self.deadline,
            "letter_subject": self.title,
            "letter_body": self.letter_body,
            "targets": [
                {k: v for k, v in asdict(t).items() if k != "honorific"} for t in self.targets
            ],
        }


def parse_urgent_action(text: str) -> ParsedUrgentAction:
    """Return what the pasted Urgent Action says; fields it cannot find are left empty."""
    lines = _clean_lines(text[:MAX_PASTE_CHARACTERS])
    body = "\n".join(lines)
    parsed = ParsedUrgentAction()
    reference = _REFERENCE.search(body)
    parsed.reference = re.sub(r"\s+", " ", reference.group(0)) if reference else ""
    title_at = _title_line(lines, parsed.reference)
    if title_at is not None:
        parsed.title = sentence_case(lines[title_at])
        parsed.summary = _summary(lines, title_at + 1)
    people = _PEOPLE.search(body)
    parsed.people_at_risk = people.group(1).strip() if people else ""
    language = _LANGUAGE.search(body + "\n")
    parsed.preferred_language = language.group(1).strip() if language else ""
    deadline = _DEADLINE.search(body)
    parsed.deadline = parse_date(deadline.group(1)) if deadline else None

    salutation_at = _salutation_line(lines)
    if salutation_at is not None:
        salutation = _SALUTATION_LINE.match(lines[salutation_at]).group(1).strip()
        main = _target_from_block(_block_before(lines, salutation_at))
        if main is not None:
            main.salutation = salutation
            parsed.targets.append(main)
        parsed.letter_body = _letter(lines, salutation_at)
    parsed.targets.extend(_additional_targets(lines))
    return parsed


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean_lines(text: str) -> list[str]:
    # Control characters come along with text copied out of PDFs; PostgreSQL refuses NUL.
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _CONTROL.sub("", text)
    return [re.sub(r"[ \u00a0]+", " ", line).strip() for line in text.split("\n")]


def sentence_case(heading: str) -> str:
    """Turn a heading in capitals into a sentence, keeping acronyms; others stay as written."""
    if heading != heading.upper():
        return heading
    words = heading.lower().split()
    out = [w.upper() if w.upper().strip(",.:;") in ACRONYMS else w for w in words]
    return (out[0][:1].upper() + out[0][1:] + " " + " ".join(out[1:])).strip() if out else ""


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:120].rstrip("-")


def parse_date(text: str) -> date | None:
    text = re.sub(r"\s+", " ", text.replace(",", "")).strip()
    for pattern in ("%d %B %Y", "%B %d %Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _title_line(lines: list[str], reference: str) -> int | None:
    """The first line after the URGENT ACTION heading that is not the reference number."""
    start = next((n for n, line in enumerate(lines) if line.upper() == "URGENT ACTION"), -1)
    for n in range(start + 1, len(lines)):
        line = lines[n]
        if line and line != reference and not _RULE.match(line):
            return n
    return None


def _summary(lines: list[str], start: int) -> str:
    """The opening paragraph: the first long line after the title, before the action."""
    for line in lines[start:]:
        if _TAKE_ACTION.match(line) or _SALUTATION_LINE.match(line):
            break
        if len(line) >= 80:
            return line
    return ""


def _salutation_line(lines: list[str]) -> int | None:
    for n, line in enumerate(lines):
        if _SALUTATION_LINE.match(line):
            return n
    return None


def _block_before(lines: list[str], end: int) -> list[str]:
    """The nearest group of address lines above `end`, skipping dates and web forms."""
    block: list[str] = []
    for line in reversed(lines[:end]):
        if _RULE.match(line):
            if block:
                break
            continue
        if _NOISE.match(line) and not _EMAIL.search(line):
            if block:
                break
            continue
        if _TAKE_ACTION.match(line):
            break
        block.insert(0, line)
    return block


def _target_from_block(block: list[str]) -> ParsedTarget | None:
    """A name, title, organisation and address from a block of lines, or from one long line."""
    if not block:
        return None
    email = ""
    rest: list[str] = []
    for line in block:
        found = _EMAIL.search(line)
        if found and (line.lower().startswith("email") or line == found.group(0)):
            email = found.group(0)
        else:
            rest.append(line)
    if len(rest) == 1:
        rest = _split_flat_block(rest[0])
    if not rest:
        return None
    honorific, name, title = _name_and_title(rest[0].rstrip(","))
    lines = rest[1:]
    if not title and lines and not lines[0][:1].isdigit():
        title = lines.pop(0)
    organisation = ""
    if ", " in title:
        title, organisation = (part.strip() for part in title.split(",", 1))
    if lines and not lines[0][:1].isdigit() and not _looks_like_place(lines[0]):
        organisation = organisation or lines.pop(0)
    return ParsedTarget(
        honorific=honorific,
        name=name,
        title=title,
        organisation=organisation,
        email=email,
        postal_address="\n".join(lines),
    )


def _split_flat_block(line: str) -> list[str]:
    """Split "Name Office The White House 1600 Avenue …" at the street number and at "The"."""
    pieces = _STREET_NUMBER.split(line, maxsplit=1)
    head = pieces[0].strip()
    parts = [head]
    if " The " in head:
        person, organisation = head.split(" The ", 1)
        parts = [person.strip(), "The " + organisation.strip()]
    if len(pieces) == 2:
        parts.append(pieces[1].strip())
    return parts


def _looks_like_place(line: str) -> bool:
    return bool(re.search(r"\d{4,}|, [A-Z]{2}\b|^[A-Z]{2,3}$", line))


def _name_and_title(line: str) -> tuple[str, str, str]:
    """("", "Donald Trump", "President") from "President Donald Trump": honorific, name, title."""
    styles = []
    lowered = line.lower()
    for honorific in HONORIFICS:
        if lowered.startswith(honorific + " "):
            styles.append(line[: len(honorific)])
            line = line[len(honorific) + 1 :].strip()
            lowered = line.lower()
    honorific = " ".join(styles)
    for office in TITLES_BEFORE_NAME:
        if lowered.startswith(office + " "):
            return honorific, line[len(office) + 1 :].strip(), line[: len(office)]
    words = line.split()
    # Two words make a name, three when the middle one is an initial ("Jane D Hartley").
    size = 3 if len(words) > 2 and re.fullmatch(r"[A-Z]\.?", words[1]) else 2
    if len(words) <= size:
        return honorific, line, ""
    return honorific, " ".join(words[:size]), " ".join(words[size:])


def _letter(lines: list[str], salutation_at: int) -> str:
    """The model letter from its salutation to its sign-off, with our placeholders in."""
    body: list[str] = []
    for line in lines[salutation_at + 1 :]:
        if _SIGN_OFF.match(line):
            body.append(line)
            break
        if _SECTION_END.match(line):
            break
        if _RULE.match(line) and line:
            continue
        body.append(line)
    # Copied from PDFs, blank lines come and go: one line is one paragraph, except in a list.
    paragraphs: list[str] = []
    for line in filter(None, body):
        if paragraphs and line.startswith(("- ", "• ")) and paragraphs[-1].startswith(("- ", "• ")):
            paragraphs[-1] += "\n" + line
        else:
            paragraphs.append(line)
    text = "\n\n".join(paragraphs)
    return "{salutation},\n\n" + text + "\n{supporter_name}\n{supporter_town}"


def _additional_targets(lines: list[str]) -> list[ParsedTarget]:
    """Each paragraph under ADDITIONAL TARGETS is a target; a lone address joins the one above."""
    start = next((n for n, line in enumerate(lines) if _ADDITIONAL_TARGETS.match(line)), None)
    if start is None:
        return []
    targets: list[ParsedTarget] = []
    salutations: list[str] = []
    for line in lines[start + 1 :]:
        if not line or _RULE.match(line):
            continue
        line = re.sub(r"^written letters can also be sent to:\s*", "", line, flags=re.I)
        explicit = _EXPLICIT_SALUTATION.match(line)
        if explicit:
            salutations.append(explicit.group(1).strip())
        elif line[:1].isdigit() and targets and not targets[-1].postal_address:
            targets[-1].postal_address = line
        else:
            target = _target_from_block([line])
            if target is not None:
                targets.append(target)
    for salutation in salutations:
        _give_salutation(targets, salutation)
    for target in targets:
        target.salutation = target.salutation or default_salutation(target)
    return targets


def _give_salutation(targets: list[ParsedTarget], salutation: str) -> None:
    """An explicit salutation goes to the target it echoes ("Your Excellency": the ambassador)."""
    words = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", salutation)} - {"your", "dear"}
    for target in targets:
        styled = f"{target.honorific} {target.title} {target.organisation}".lower()
        if not target.salutation and any(w in styled for w in words):
            target.salutation = salutation
            return
    for target in targets:
        if not target.salutation:
            target.salutation = salutation
            return


def default_salutation(target: ParsedTarget) -> str:
    return f"Dear {target.name}".strip()
