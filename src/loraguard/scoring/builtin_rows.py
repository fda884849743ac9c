"""Built-in Jigsaw-format rows: the demo's data and `probe`'s default samples (written for loraguard).

Two rules, posts that clearly violate or clearly respect them, and two positive and two negative
examples per rule, as in the Jigsaw "Agile Community Rules" CSV.
"""

from __future__ import annotations

from typing import Final

from loraguard.scoring.data import LABEL_COLUMN, REQUIRED_COLUMNS

COLUMNS: Final = (*REQUIRED_COLUMNS, LABEL_COLUMN)
"""The Jigsaw columns with the label, in the competition's order."""

_ADS = "No Advertising: Spam, referral links, unsolicited advertising, and promotional content are not allowed."
_LEGAL = "No legal advice: Do not offer or request legal advice."

_ADS_POS = (
    "Buy cheap followers now at www.best-followers.example, use code SAVE50!",
    "Click my referral link to get free crypto: http://ref.example/abc",
)
_ADS_NEG = (
    "I tried that recipe last night and it came out great, thanks for sharing.",
    "Does anyone know when the next season of the show starts?",
)
_LEGAL_POS = (
    "You should sue your landlord, you will definitely win in small claims court.",
    "Just don't sign anything, legally they cannot make you pay that fine.",
)
_LEGAL_NEG = (
    "My cat learned to open the fridge, send help.",
    "The sunset over the lake was beautiful this evening.",
)

_POSTS: Final = (
    (_ADS, "gaming", "Get 1000 free coins at coin-deals.example, limited offer, click now!", 1),
    (_ADS, "fitness", "Lose 20 pounds in a week with my supplement shop, link in bio, discount code FIT", 1),
    (_ADS, "technology", "Check out my store for the cheapest phone cases online, free shipping today only!", 1),
    (_ADS, "movies", "Watch every new movie free in HD at stream-now.example, no signup, visit now", 1),
    (_ADS, "music", "Subscribe to my channel and use my referral link for a free month, link below", 1),
    (_ADS, "personalfinance", "Earn $500 a day from home, DM me for the secret program, spots are limited", 1),
    (_ADS, "gaming", "I finally beat the last boss after three weeks of trying, what a fight.", 0),
    (_ADS, "fitness", "My knees hurt after running, should I switch to cycling for a while?", 0),
    (_ADS, "technology", "Has anyone else had their laptop battery drain overnight after the update?", 0),
    (_ADS, "movies", "The ending of that film made no sense to me, can someone explain it?", 0),
    (_ADS, "music", "This album reminds me of summer road trips with my dad.", 0),
    (_ADS, "personalfinance", "Is it better to pay off my car loan early or save for an emergency fund?", 0),
    (_LEGAL, "legaladvice", "You can break your lease without penalty, the law says they can't charge you.", 1),
    (_LEGAL, "relationships", "Take him to court for custody, any judge will side with you, trust me.", 1),
    (_LEGAL, "personalfinance", "Don't pay the debt collector, legally they have no case after two years.", 1),
    (_LEGAL, "work", "Your boss fired you illegally, file a lawsuit tomorrow and you will win big.", 1),
    (_LEGAL, "cars", "The other driver is liable, just tell the insurance you'll sue and they'll pay.", 1),
    (_LEGAL, "tenants", "Stop paying rent, legally the landlord cannot evict you in winter.", 1),
    (_LEGAL, "legaladvice", "Thanks everyone, I talked to a lawyer and it is sorted out now.", 0),
    (_LEGAL, "relationships", "We went hiking together and had the best weekend in years.", 0),
    (_LEGAL, "personalfinance", "What budgeting app do you all use to track groceries?", 0),
    (_LEGAL, "work", "My coworker brought homemade cookies today and they were amazing.", 0),
    (_LEGAL, "cars", "What oil do you recommend for an older hatchback?", 0),
    (_LEGAL, "tenants", "Our building finally fixed the elevator, only took a month.", 0),
)


def builtin_rows() -> list[dict[str, str]]:
    """24 labelled rows in the Jigsaw column layout (all values as strings, as a CSV reader gives)."""
    rows = []
    for i, (rule, subreddit, body, label) in enumerate(_POSTS):
        pos, neg = (_ADS_POS, _ADS_NEG) if rule == _ADS else (_LEGAL_POS, _LEGAL_NEG)
        rows.append(
            {
                "row_id": str(9000 + i),
                "body": body,
                "rule": rule,
                "subreddit": subreddit,
                "positive_example_1": pos[0],
                "positive_example_2": pos[1],
                "negative_example_1": neg[0],
                "negative_example_2": neg[1],
                "rule_violation": str(label),
            }
        )
    return rows
