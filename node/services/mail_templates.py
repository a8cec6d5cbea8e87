"""The node's mails in plain language (DESIGN §12): English, and German where the node speaks it.

Each template is ``(subject, body)``; ``str.format`` fields are filled by :func:`render`. Subjects
hold no applicant input at all (nothing typed by a stranger ever reaches a mail header); bodies may.
Links stand on a line of their own, so a mail client shows them whole.
"""

from __future__ import annotations

from typing import Any

#: Countries whose mails are German when ``mail_language`` is not set.
GERMAN_COUNTRIES = frozenset({"DE", "AT", "LI", "LU"})

GROUND_TITLES: dict[str, dict[str, str]] = {
    "en": {
        "criteria-not-met": "the membership criteria are not met",
        "criteria-no-longer-met": "the membership criteria are no longer met",
        "financial-regulation-exclusion": "an exclusion situation under the Financial Regulation",
        "security-reasons": "justified security reasons",
    },
    "de": {
        "criteria-not-met": "die Voraussetzungen für die Mitgliedschaft sind nicht erfüllt",
        "criteria-no-longer-met": "die Voraussetzungen für die Mitgliedschaft sind nicht mehr erfüllt",
        "financial-regulation-exclusion": "ein Ausschlussgrund nach der Haushaltsordnung",
        "security-reasons": "berechtigte Sicherheitsgründe",
    },
}

TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "confirm": (
            "Please confirm your application to the {ncc}",
            """Hello {name},

we received an application for "{organisation}" to join the European Cybersecurity
Competence Community through the {ncc}.

To confirm it, open this link and press the "Confirm" button:

{confirm_link}

The link works once and until {expires}. If you did not apply, you need not do
anything: the application will be deleted.

To follow your application later, keep this second link (it does not confirm anything):

{manage_link}

{signature}
""",
        ),
        "received": (
            "We have your application ({ncc})",
            """Hello {name},

thank you: your application for "{organisation}" is confirmed. The {ncc} will now
assess it and write to you when it has decided.

You can see where your application stands at any time here:

{manage_link}

{signature}
""",
        ),
        "manage": (
            "Your link to follow your application ({ncc})",
            """Hello {name},

you (or someone giving your address) asked for the link to follow the application
for "{organisation}". Here it is:

{manage_link}

It works until {expires}. If you did not ask for it, you can ignore this mail.

{signature}
""",
        ),
        "assessor": (
            "New application to assess",
            """A new application was confirmed and waits for assessment:

Organisation: {organisation}
Record: {record_id}

Open the assessment queue:

{queue_link}
""",
        ),
        "assessed": (
            "Your application has been assessed ({ncc})",
            """Hello {name},

the {ncc} has assessed the application for "{organisation}". The next step is the
decision on the registration; we will write to you again.
{note_block}
Follow your application here:

{manage_link}

{signature}
""",
        ),
        "registered": (
            "Welcome to the Cybersecurity Competence Community ({ncc})",
            """Hello {name},

good news: "{organisation}" is now registered as a member of the European
Cybersecurity Competence Community.
{note_block}
Follow your registration here:

{manage_link}

{signature}
""",
        ),
        "rejected": (
            "Decision on your application ({ncc})",
            """Hello {name},

we are sorry: the {ncc} could not accept the application for "{organisation}".

Reason: {ground}
{note_block}
You may apply again once the reason no longer applies. Your application:

{manage_link}

{signature}
""",
        ),
        "revoked": (
            "Your Community membership has been revoked ({ncc})",
            """Hello {name},

the {ncc} has revoked the Community membership of "{organisation}".

Reason: {ground}
{note_block}
You may apply again once the reason no longer applies. Your file:

{manage_link}

{signature}
""",
        ),
        "note": "\nA note from the assessor:\n\n{note}\n",
        "ncc": "{country} National Coordination Centre",
        "signature": "The {country} National Coordination Centre",
    },
    "de": {
        "confirm": (
            "Bitte bestätigen Sie Ihren Antrag ({ncc})",
            """Guten Tag {name},

wir haben einen Antrag für „{organisation}“ auf Aufnahme in die Europäische
Cybersicherheits-Kompetenzgemeinschaft über das {ncc} erhalten.

Um ihn zu bestätigen, öffnen Sie diesen Link und drücken Sie „Bestätigen“:

{confirm_link}

Der Link gilt einmal und bis {expires}. Wenn Sie keinen Antrag gestellt haben,
müssen Sie nichts tun: der Antrag wird gelöscht.

Um Ihren Antrag später zu verfolgen, bewahren Sie diesen zweiten Link auf (er bestätigt nichts):

{manage_link}

{signature}
""",
        ),
        "received": (
            "Ihr Antrag ist eingegangen ({ncc})",
            """Guten Tag {name},

vielen Dank: Ihr Antrag für „{organisation}“ ist bestätigt. Das {ncc} prüft ihn
nun und schreibt Ihnen, sobald es entschieden hat.

Den Stand Ihres Antrags sehen Sie jederzeit hier:

{manage_link}

{signature}
""",
        ),
        "manage": (
            "Ihr Link zu Ihrem Antrag ({ncc})",
            """Guten Tag {name},

Sie (oder jemand mit Ihrer Adresse) haben den Link zum Antrag für „{organisation}“
angefordert. Hier ist er:

{manage_link}

Er gilt bis {expires}. Wenn Sie ihn nicht angefordert haben, können Sie diese Mail ignorieren.

{signature}
""",
        ),
        "assessor": (
            "Neuer Antrag zu prüfen",
            """Ein neuer Antrag wurde bestätigt und wartet auf die Prüfung:

Organisation: {organisation}
Datensatz: {record_id}

Zur Prüfliste:

{queue_link}
""",
        ),
        "assessed": (
            "Ihr Antrag wurde geprüft ({ncc})",
            """Guten Tag {name},

das {ncc} hat den Antrag für „{organisation}“ geprüft. Als Nächstes wird über die
Registrierung entschieden; wir schreiben Ihnen wieder.
{note_block}
Ihr Antrag:

{manage_link}

{signature}
""",
        ),
        "registered": (
            "Willkommen in der Cybersicherheits-Kompetenzgemeinschaft ({ncc})",
            """Guten Tag {name},

„{organisation}“ ist jetzt als Mitglied der Europäischen Cybersicherheits-
Kompetenzgemeinschaft registriert.
{note_block}
Ihre Registrierung:

{manage_link}

{signature}
""",
        ),
        "rejected": (
            "Entscheidung über Ihren Antrag ({ncc})",
            """Guten Tag {name},

leider konnte das {ncc} den Antrag für „{organisation}“ nicht annehmen.

Grund: {ground}
{note_block}
Sie können erneut einen Antrag stellen, sobald der Grund entfallen ist. Ihr Antrag:

{manage_link}

{signature}
""",
        ),
        "revoked": (
            "Ihre Mitgliedschaft wurde widerrufen ({ncc})",
            """Guten Tag {name},

das {ncc} hat die Mitgliedschaft von „{organisation}“ in der Gemeinschaft widerrufen.

Grund: {ground}
{note_block}
Sie können erneut einen Antrag stellen, sobald der Grund entfallen ist. Ihre Akte:

{manage_link}

{signature}
""",
        ),
        "note": "\nEine Anmerkung der prüfenden Stelle:\n\n{note}\n",
        "ncc": "Nationale Koordinierungszentrum {country}",
        "signature": "Ihr Nationales Koordinierungszentrum {country}",
    },
}


def language_for(country: str, setting: str = "") -> str:
    """The mail language: the setting, else the country's when a translation exists, else English."""
    if setting in TEMPLATES:
        return setting
    return "de" if country in GERMAN_COUNTRIES else "en"


def render(kind: str, language: str, country: str, **values: Any) -> tuple[str, str]:
    """``(subject, body)`` of one mail.

    Raises:
        KeyError: unknown kind (a programming error).
    """
    texts = TEMPLATES.get(language, TEMPLATES["en"])
    subject_t, body_t = texts[kind]
    ncc = str(texts["ncc"]).format(country=country)
    ground = values.get("ground")
    note = values.get("note")
    fields = {
        "name": "", "organisation": "", "confirm_link": "", "manage_link": "", "queue_link": "",
        "expires": "", "record_id": "", **{k: v for k, v in values.items() if v is not None},
        "ncc": ncc,
        "signature": str(texts["signature"]).format(country=country),
        "ground": GROUND_TITLES.get(language, GROUND_TITLES["en"]).get(str(ground), str(ground or "")),
        "note_block": str(texts["note"]).format(note=note) if note else "",
    }
    return subject_t.format(**fields), body_t.format(**fields)
