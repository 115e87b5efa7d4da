"""Reading pasted Urgent Actions: the shapes of the real seed texts, shortened and reworded."""

from __future__ import annotations

import time
from datetime import date

from app.campaigns.letter_text import fill_placeholders
from app.campaigns.urgent_action import parse_urgent_action, sentence_case

# Shaped like seed 000: one target with an email, blank lines between letter paragraphs.
FAMILY = """ URGENT ACTION

STOP SEPARATION OF FAMILY SEEKING SAFETY
On 21 March immigration officers detained both parents of a Venezuelan family of five, who hold Temporary Protected Status, and parted them from their three young children.

TAKE ACTION: WRITE AN APPEAL IN YOUR OWN WORDS OR USE THIS MODEL LETTER


Todd Lyons, \t
Acting Director, Immigration and Customs Enforcement
500 12th St SW
Washington, DC 20536, USA
Email: Todd.M.Lyons@ice.dhs.gov\x20
Dear Mr. Lyons,

Please release Cesar and Norelia so they can go home to their children.

Detaining people who hold valid TPS is unlawful.


Yours sincerely,




Additional information
The family fled Venezuela in 2022.
PREFERRED LANGUAGE TO ADDRESS TARGET: English

PLEASE TAKE ACTION AS SOON AS POSSIBLE UNTIL: 24 June 2025\x20

NAME AND PRONOUN: Cesar (he/him), Norelia (she/her)
"""

# Shaped like seed 003: the address run into one line, a web form, more targets at the end.
MASS_DEPORTATION = """URGENT ACTION

PEOPLE SEEKING SAFETY AT RISK IN THE USA

The new administration has promised mass arrests, mass detention and mass removals of people who came to the USA seeking safety, which would separate families and return people to harm.

TAKE ACTION: WRITE AN APPEAL IN YOUR OWN WORDS OR USE THIS MODEL LETTER

President Donald Trump The White House 1600 Pennsylvania Avenue, NW Washington, DC 20500, USA

Date: January 21 2025

webform*: https://www.whitehouse.gov/contact/

Dear President Trump:

I urge you to respect the rights of people seeking safety.
I call on you to:

- halt all plans for mass deportations
- uphold the right to seek asylum

Yours sincerely,

ADDITIONAL INFORMATION

PLEASE TAKE ACTION AS SOON AS POSSIBLE UNTIL: 3 March 2025

ADDITIONAL TARGETS

Her Excellency Ms Jane D Hartley Ambassador Extraordinary & Plenipotentiary U.S. Embassy 33 Nine Elms Lane, London SW11 7US

Written letters can also be sent to: Stephen Miller Deputy Chief of Staff The White House

1600 Pennsylvania Avenue NW Washington, DC 20500, USA

Salutation: Your Excellency
"""

# Shaped like seed 004: a reference number, tab-indented heading, blanks of a printed form,
# a postal-only target and a deadline inside a numbered list.
EXPULSIONS = """\tAMR 51/9206/2025 - USA - Date: 1 April 2025

\tURGENT ACTION
\t
\tUA 034/25

\tStop illegal expulsions to El Salvador

\tUSA


Under the Alien Enemies Act, 255 people were removed from the USA to El Salvador and are held in CECOT, a prison known for its inhumane conditions; we call for their return.
TAKE ACTION
1. Write an appeal in your own words or use the model letter on page 2.
1. Please take action before 1 July 2025.
1. Preferred language: English. You can also write in your own language.
 \tThe Honorable Kristi Noem
Secretary of Homeland Security
 ________________________
________________________


The Honorable Kristi Noem
Secretary of Homeland Security
U.S. Department of Homeland Security
2707 Martin Luther King Jr. Avenue, SE
Washington, DC 20528
USA
________________________

Dear Secretary Noem,
I am deeply concerned about the expulsions to El Salvador.
I urge you to return those who were removed unlawfully.

Yours sincerely,
________________________
Copie
"""


def test_family_text_gives_title_summary_target_deadline_and_people():
    parsed = parse_urgent_action(FAMILY)
    assert parsed.title == "Stop separation of family seeking safety"
    assert parsed.slug == "stop-separation-of-family-seeking-safety"
    assert parsed.summary.startswith("On 21 March immigration officers detained")
    assert parsed.deadline == date(2025, 6, 24)
    assert parsed.people_at_risk == "Cesar (he/him), Norelia (she/her)"
    assert parsed.preferred_language == "English"
    [target] = parsed.targets
    assert target.name == "Todd Lyons"
    assert target.title == "Acting Director"
    assert target.organisation == "Immigration and Customs Enforcement"
    assert target.salutation == "Dear Mr. Lyons"
    assert target.email == "Todd.M.Lyons@ice.dhs.gov"
    assert target.postal_address == "500 12th St SW\nWashington, DC 20536, USA"


def test_model_letter_gets_our_placeholders_and_stops_at_the_sign_off():
    letter = parse_urgent_action(FAMILY).letter_body
    assert letter == (
        "{salutation},\n\n"
        "Please release Cesar and Norelia so they can go home to their children.\n\n"
        "Detaining people who hold valid TPS is unlawful.\n\n"
        "Yours sincerely,\n{supporter_name}\n{supporter_town}"
    )
    filled = fill_placeholders(
        letter,
        {"salutation": "Dear Mr. Lyons", "supporter_name": "Jane Doe", "supporter_town": "Leeds"},
    )
    assert filled.startswith("Dear Mr. Lyons,\n\nPlease release")
    assert filled.endswith("Yours sincerely,\nJane Doe\nLeeds")
    assert "Additional information" not in letter


def test_flattened_address_is_split_and_additional_targets_are_read():
    parsed = parse_urgent_action(MASS_DEPORTATION)
    assert parsed.title == "People seeking safety at risk in the USA"
    assert parsed.deadline == date(2025, 3, 3)
    main, ambassador, adviser = parsed.targets
    assert (main.name, main.title, main.organisation) == (
        "Donald Trump",
        "President",
        "The White House",
    )
    assert main.salutation == "Dear President Trump"
    assert main.postal_address == "1600 Pennsylvania Avenue, NW Washington, DC 20500, USA"
    assert main.email == ""
    # The explicit salutation goes to the ambassador it echoes, not to the line above it.
    assert ambassador.name == "Jane D Hartley"
    assert ambassador.salutation == "Your Excellency"
    assert ambassador.postal_address.startswith("33 Nine Elms Lane, London")
    assert adviser.name == "Stephen Miller"
    assert adviser.organisation == "The White House"
    assert adviser.postal_address == "1600 Pennsylvania Avenue NW Washington, DC 20500, USA"
    assert adviser.salutation == "Dear Stephen Miller"


def test_letter_lists_stay_together_and_web_form_lines_are_not_an_address():
    parsed = parse_urgent_action(MASS_DEPORTATION)
    assert "- halt all plans for mass deportations\n- uphold the right" in parsed.letter_body
    assert "webform" not in parsed.targets[0].postal_address


def test_reference_form_blanks_and_postal_only_target():
    parsed = parse_urgent_action(EXPULSIONS)
    assert parsed.reference == "UA 034/25"
    assert parsed.title == "Stop illegal expulsions to El Salvador"
    assert parsed.summary.startswith("Under the Alien Enemies Act")
    assert parsed.deadline == date(2025, 7, 1)
    [target] = parsed.targets
    assert target.name == "Kristi Noem"
    assert target.title == "Secretary of Homeland Security"
    assert target.organisation == "U.S. Department of Homeland Security"
    assert target.salutation == "Dear Secretary Noem"
    assert target.email == ""
    assert target.postal_address == (
        "2707 Martin Luther King Jr. Avenue, SE\nWashington, DC 20528\nUSA"
    )
    assert "___" not in parsed.letter_body
    assert "Copie" not in parsed.letter_body
    assert parsed.letter_body.startswith("{salutation},\n\nI am deeply concerned")


def test_deadline_written_the_brief_way():
    parsed = parse_urgent_action(
        "URGENT ACTION\nFree them\nPLEASE TAKE ACTION BEFORE: 12 January 2027"
    )
    assert parsed.deadline == date(2027, 1, 12)


def test_text_that_is_not_an_urgent_action_leaves_fields_empty():
    parsed = parse_urgent_action("Hello\n\nJust a note, nothing more.")
    assert parsed.targets == []
    assert parsed.letter_body == ""
    assert parsed.deadline is None
    assert parsed.reference == ""


def test_hostile_and_huge_input_does_not_break_the_parser():
    parsed = parse_urgent_action("URGENT ACTION\n<script>x</script>\x00\n" + "Dear " * 50_000)
    assert parsed.title == "<script>x</script>"  # control characters dropped; pages escape it
    assert parse_urgent_action("").title == ""


def test_sentence_case_keeps_acronyms_and_leaves_mixed_case_alone():
    assert sentence_case("RELEASE THE TPS HOLDERS IN THE US") == "Release the TPS holders in the US"
    assert sentence_case("Free Ahmed now") == "Free Ahmed now"


def test_campaign_fields_are_a_draft_letter_with_the_summary_escaped():
    text = FAMILY.replace("three young children", "three <b>young</b> children")
    fields = parse_urgent_action(text).campaign_fields()
    assert fields["status"] == "draft"
    assert fields["kind"] == "letter"
    assert fields["deadline_date"] == date(2025, 6, 24)
    assert fields["letter_subject"] == "Stop separation of family seeking safety"
    assert "three &lt;b&gt;young&lt;/b&gt; children" in fields["summary"]
    assert fields["summary"].endswith("<p>People at risk: Cesar (he/him), Norelia (she/her)</p>")
    assert fields["targets"][0] == {
        "name": "Todd Lyons",
        "salutation": "Dear Mr. Lyons",
        "title": "Acting Director",
        "organisation": "Immigration and Customs Enforcement",
        "email": "Todd.M.Lyons@ice.dhs.gov",
        "postal_address": "500 12th St SW\nWashington, DC 20536, USA",
    }


def test_repeated_phrases_are_parsed_in_linear_time():
    started = time.monotonic()
    parse_urgent_action("take action by " * 2_000)
    parse_urgent_action("Dear " * 6_000)
    assert time.monotonic() - started < 1  # a backtracking pattern took seconds here
