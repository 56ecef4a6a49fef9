#!/usr/bin/env python3
"""Generate the shipped sentiment sample (workloads/training/data/sample/).

Deterministic: a fixed seed composes short English reviews of products, films,
books and services from hand-written phrase pools. Each thing reviewed belongs
to a small group (audio gear, kitchen tools, films, restaurants, ...) with its
own aspects, so a review of a kettle talks about kettles. About a third of the
reviews are harder cases: negation ("not bad at all", "I wouldn't recommend
it") and mixed reviews that lean one way ("a bit pricey, but worth it").
No sarcasm: every review means what it says.

    python workloads/training/data/make_sample.py            # rewrite sample/
    python workloads/training/data/make_sample.py --check    # verify sample/ is up to date

Output: train.jsonl and eval.jsonl, one {"text": ..., "label": 0|1} per line
(0 = NEGATIVE, 1 = POSITIVE), balanced, deduplicated (case and punctuation
insensitive), no eval text in train. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

SEED = 20261122
PER_CLASS = 750          # 1500 reviews in all
EVAL_FRACTION = 0.2      # held out, stratified per label
OUT = Path(__file__).resolve().parent / "sample"

POS, NEG = 1, 0

# ---------------------------------------------------------------------------
# Groups: family (product | screen | read | service), items, and aspects.
# Aspect phrases are clauses; {n} {d} {h} {m} are filled with small numbers.
# ---------------------------------------------------------------------------
GROUPS: dict[str, dict] = {
    "audio": {
        "family": "product",
        "items": ["pair of headphones", "pair of earbuds", "bluetooth speaker", "soundbar"],
        POS: [
            "the sound is crisp and clear", "the bass is rich without being muddy",
            "the battery easily lasts {n} days", "it pairs instantly with my phone",
            "the noise cancelling works wonders on my commute", "calls sound clear on both ends",
            "it fills the whole room with sound", "it stays comfortable for hours",
        ],
        NEG: [
            "the sound is tinny and muffled", "it keeps dropping the connection",
            "the microphone makes me sound like I'm underwater", "the speaker crackles at half volume",
            "the battery dies after {h} hours", "pairing fails more often than it works",
            "the touch controls trigger on their own", "there is a constant hiss in the background",
        ],
    },
    "gadget": {
        "family": "product",
        "items": ["laptop", "tablet", "smartwatch", "e-reader", "fitness tracker", "monitor", "webcam", "dash cam"],
        POS: [
            "the screen is bright and sharp", "the battery gets me through {n} days",
            "it boots up in seconds", "the picture quality is stunning",
            "the app is simple and actually useful", "it is light enough to carry everywhere",
            "the firmware updates keep making it better", "it never lags, even with lots open",
        ],
        NEG: [
            "the screen flickers constantly", "it gets uncomfortably hot", "the app crashes every time I open it",
            "it randomly shuts itself off", "it froze during the first week",
            "the picture is grainy even in daylight", "it lags so badly it is barely usable",
            "the battery is flat by lunchtime",
        ],
    },
    "accessory": {
        "family": "product",
        "items": ["keyboard", "wireless mouse", "gaming controller", "phone charger", "power bank", "router"],
        POS: [
            "the keys have a satisfying click", "it charges my phone twice on a single fill",
            "the signal reaches every room in the house", "it has not dropped the connection once",
            "it fits my hand perfectly", "it charges fast and stays cool",
            "setup took less than {m} minutes", "the buttons feel precise and responsive",
        ],
        NEG: [
            "the buttons feel cheap and flimsy", "it stopped charging after {d} weeks",
            "the charging port is already loose", "the signal drops every evening",
            "half the keys stick", "it charges slower than my old one",
            "it disconnects in the middle of games", "the cable frayed within a month",
        ],
    },
    "kitchen": {
        "family": "product",
        "items": ["blender", "coffee maker", "air fryer", "kettle", "toaster", "rice cooker", "stand mixer",
                  "frying pan", "knife set", "water filter"],
        POS: [
            "it makes the best coffee I've had at home", "it crushes ice without any effort",
            "it cooks evenly every single time", "nothing sticks to it", "it cleans up in seconds",
            "it looks great on the counter", "it heats up in under {m} minutes",
            "the edges are still razor sharp", "it fits perfectly in my small kitchen",
        ],
        NEG: [
            "it leaks all over the counter", "the motor burned out after {d} weeks",
            "the coating started peeling off", "the blades went dull within a month",
            "it smells like burning plastic", "the lid never closes properly",
            "everything comes out half raw", "it rusted after the first wash",
            "it trips the breaker every morning",
        ],
    },
    "appliance": {
        "family": "product",
        "items": ["vacuum cleaner", "space heater", "humidifier", "desk lamp", "robot vacuum", "electric fan"],
        POS: [
            "it is whisper quiet", "the carpet has never looked cleaner", "it warms the whole room quickly",
            "the suction is stronger than my old one", "the light is soft and even",
            "the controls are simple enough for my kids", "it runs all night without a sound",
        ],
        NEG: [
            "it is louder than a jet engine", "the suction is pathetic", "it takes forever to heat up",
            "it gets stuck under every chair", "the light flickers like a horror movie",
            "it barely moves any air", "it leaves a puddle on the floor every night",
        ],
    },
    "furniture": {
        "family": "product",
        "items": ["mattress", "pillow", "desk chair", "standing desk", "sofa bed", "bookshelf"],
        POS: [
            "I sleep through the night for the first time in years", "my back pain is gone after long workdays",
            "it feels sturdy and well made", "assembly was quick and the instructions were clear",
            "it is firm without being hard", "it still looks new after {n} months",
        ],
        NEG: [
            "it sags in the middle after a few weeks", "it wobbles no matter how I assemble it",
            "half the parts were missing", "the cushion went flat in {d} weeks",
            "it creaks every time I move", "the finish scratched on day one",
        ],
    },
    "gear": {
        "family": "product",
        "items": ["backpack", "suitcase", "tent", "sleeping bag", "camping stove", "water bottle"],
        POS: [
            "it survived a week of heavy rain", "it packs down smaller than I expected",
            "there are pockets for everything", "the zippers are smooth and sturdy",
            "setting it up takes two minutes", "it held up through a whole season of use",
            "it keeps drinks cold all day", "it is light but feels tough",
        ],
        NEG: [
            "the seams split on the first trip", "it soaked through in light rain",
            "the zipper broke on day one", "the poles bent in a light breeze",
            "a wheel snapped off at the airport", "it leaks in my bag",
            "it is much heavier than advertised", "the straps dig into my shoulders",
        ],
    },
    "wear": {
        "family": "product",
        "items": ["pair of running shoes", "pair of hiking boots", "winter jacket", "rain jacket",
                  "bike helmet", "yoga mat"],
        POS: [
            "the fit is spot on", "the grip is excellent on wet rock", "it keeps me warm even below freezing",
            "it kept me dry on a {n} mile hike", "it is comfortable straight out of the box",
            "it still looks new after months of use", "it feels light and breathable",
        ],
        NEG: [
            "the sizing is completely off", "it gave me blisters within a mile",
            "the sole started peeling off after {d} weeks", "the fabric pilled after one wash",
            "it smells of chemicals even after airing it out", "the buckle cracked the first time I used it",
            "it soaked through in ten minutes of drizzle",
        ],
    },
    "screen": {
        "family": "screen",
        "items": ["movie", "film", "sequel", "documentary", "series", "thriller", "comedy", "animated film",
                  "mini-series", "horror film", "musical", "crime drama", "romantic comedy", "sitcom"],
        POS: [
            "the acting is superb", "the soundtrack is gorgeous", "I laughed the whole way through",
            "every scene is beautifully shot", "the lead gives the performance of a career",
            "the chemistry between the leads is wonderful", "the plot twists actually surprised me",
            "the ending left me in tears, in a good way", "the visuals are breathtaking",
        ],
        NEG: [
            "I nearly fell asleep halfway through", "the acting is wooden", "the jokes fall completely flat",
            "the special effects look cheap", "nothing happens for the first hour",
            "the sound mix drowns out the dialogue", "it is a lazy copy of the original",
            "the twist was obvious from the first scene", "the camera work gave me a headache",
        ],
    },
    "read": {
        "family": "read",
        "items": ["novel", "audiobook", "memoir", "fantasy novel", "cookbook", "podcast", "biography",
                  "short story collection"],
        POS: [
            "I could not put it down", "the narrator has a wonderful voice", "the writing is tight and clever",
            "the world building is rich and believable", "every chapter ends on a hook",
            "it taught me something new on every page", "the recipes actually work",
        ],
        NEG: [
            "I gave up after {n} chapters", "the narrator mumbles through every chapter",
            "the writing is full of clichés", "half the recipes simply don't work",
            "it repeats the same point for three hundred pages", "the editing is sloppy, with typos everywhere",
            "the episodes ramble with no point",
        ],
    },
    "food": {
        "family": "service",
        "items": ["restaurant", "pizza place", "coffee shop", "bakery", "sushi bar", "food truck"],
        POS: [
            "our food came out hot and fast", "the portions are generous",
            "the bread is still warm when you buy it", "the coffee is rich and smooth",
            "every dish was full of flavour", "the place is clean and welcoming",
        ],
        NEG: [
            "we waited over an hour for our food", "the food was cold and bland",
            "my order was wrong for the third time", "the coffee tasted burnt",
            "the tables were sticky and the floor was dirty", "the fish did not taste fresh",
        ],
    },
    "travel": {
        "family": "service",
        "items": ["hotel", "airline", "car rental company", "holiday rental", "train company"],
        POS: [
            "the room was spotless", "the flight left right on time", "the car was clean and ready when we landed",
            "the view from our room was stunning", "check-in took two minutes", "the seats had plenty of legroom",
        ],
        NEG: [
            "the room smelled of smoke", "my flight was delayed {h} hours with no explanation",
            "they lost my luggage and stopped replying", "the car had a flat tyre at pickup",
            "the bathroom was filthy", "the train was cancelled and nobody told us why",
        ],
    },
    "trades": {
        "family": "service",
        "items": ["plumber", "moving company", "cleaning service", "mechanic", "electrician", "roofer"],
        POS: [
            "they arrived on time and fixed it quickly", "they explained every step clearly",
            "the quote was fair and there were no surprises", "they left the place tidier than they found it",
            "the car runs better than it has in years", "nothing was scratched or broken",
        ],
        NEG: [
            "they showed up {h} hours late", "they left a mess behind", "the repair failed again within a week",
            "the final bill was double the quote", "they broke two of our lamps", "they never came back to finish",
        ],
    },
    "care": {
        "family": "service",
        "items": ["dentist", "hair salon", "vet clinic", "gym", "physio clinic", "barber"],
        POS: [
            "they treated my dog with real care", "the haircut is exactly what I asked for",
            "they made a nervous patient feel at ease", "the equipment is modern and well kept",
            "they remembered my name on my second visit", "the appointment started right on time",
        ],
        NEG: [
            "they cancelled my appointment without telling me", "the haircut was uneven and rushed",
            "the equipment is broken half the time", "they kept me waiting forty minutes",
            "they pushed expensive extras I didn't need", "the changing rooms were disgusting",
        ],
    },
    "digital": {
        "family": "service",
        "items": ["bank app", "internet provider", "delivery service", "phone provider", "streaming service"],
        POS: [
            "the app makes everything quick and easy", "support resolved my issue in {m} minutes",
            "the connection is fast and stable", "my parcels always arrive early",
            "the monthly price is fair", "switching over took five minutes",
        ],
        NEG: [
            "the app logs me out constantly", "the connection drops every evening",
            "they charged me twice and never refunded it", "nobody answered the phone for {d} days",
            "my parcel was left in the rain", "the price went up without any warning",
        ],
    },
}

# Aspects that fit any member of a family.
FAMILY_ASPECTS = {
    ("product", POS): [
        "it is worth every penny", "it does exactly what it promises", "it is great value for the money",
        "the quality is excellent", "it works perfectly", "I use it every day",
        "it arrived quickly and well packed", "it is even better than the photos",
    ],
    ("product", NEG): [
        "it broke within a week", "it feels cheaply made", "it stopped working after {d} days",
        "it looks nothing like the photos", "it arrived damaged", "customer service ignored my emails",
    ],
    ("screen", POS): [
        "the story kept me hooked until the very end", "the characters feel like real people",
        "the dialogue is sharp and witty", "the pacing is perfect", "it stayed with me for days afterwards",
    ],
    ("screen", NEG): [
        "the plot makes no sense", "the dialogue is painfully clunky", "the ending felt rushed and lazy",
        "the characters are paper thin", "it drags on for far too long",
    ],
    ("read", POS): [
        "the characters feel like real people", "it stayed with me for days afterwards",
        "it is smart, funny and moving", "the pacing is perfect",
    ],
    ("read", NEG): [
        "the story goes nowhere", "the characters are paper thin", "it drags on for far too long",
        "the ending felt rushed and lazy",
    ],
    ("service", POS): [
        "the staff were friendly and attentive", "they went out of their way to help",
        "the prices are fair and clearly listed", "the booking process was painless",
        "they followed up to make sure I was happy",
    ],
    ("service", NEG): [
        "the staff were rude and dismissive", "the bill had charges I never agreed to",
        "the manager refused to even listen", "nobody seemed to know what they were doing",
        "they never replied to my complaint",
    ],
}

OPENERS = {
    ("product", POS): [
        "Absolutely love this {item}.", "Really impressed with this {item}.",
        "Best {item} I've ever owned.", "So glad I bought this {item}.",
        "This {item} exceeded my expectations.", "Fantastic {item}.",
        "I've had this {item} for {n} months now and I'm very happy.",
        "Great {item}, no regrets.", "My new favourite {item}.",
        "Bought this {item} as a gift and ended up getting one for myself.", "Such a solid {item}.",
    ],
    ("product", NEG): [
        "Really disappointed with this {item}.", "Worst {item} I've ever bought.",
        "I regret buying this {item}.", "Do not buy this {item}.",
        "This {item} is a real letdown.", "Terrible {item}.",
        "I've had this {item} for {n} weeks and I'm already fed up.",
        "Sadly this {item} is going back.", "What a frustrating {item}.",
        "Bought this {item} as a gift and I'm embarrassed I did.", "Such a poorly made {item}.",
    ],
    ("screen", POS): [
        "What a wonderful {item}.", "Loved this {item}.", "This {item} is a real gem.",
        "Easily the best {item} I've seen this year.", "I went in expecting little and this {item} blew me away.",
        "A brilliant {item}.", "I've recommended this {item} to everyone I know.",
        "Just finished this {item} and I'm still smiling.",
    ],
    ("screen", NEG): [
        "What a disappointing {item}.", "I really disliked this {item}.", "This {item} is a mess.",
        "Easily the worst {item} I've seen this year.", "I had high hopes for this {item} and it let me down.",
        "A dull, forgettable {item}.", "I can't believe how bad this {item} is.",
        "Just finished this {item} and I want my evening back.",
    ],
    ("read", POS): [
        "What a wonderful {item}.", "Loved this {item}.", "This {item} is a real gem.",
        "The best {item} I've picked up in ages.", "I've recommended this {item} to all my friends.",
        "A brilliant {item}.", "Finished this {item} in two sittings.",
    ],
    ("read", NEG): [
        "What a disappointing {item}.", "I really disliked this {item}.", "This {item} is a slog.",
        "The worst {item} I've picked up in ages.", "I had high hopes for this {item}.",
        "A dull, forgettable {item}.", "I forced myself to finish this {item}.",
    ],
    ("service", POS): [
        "Great experience with this {item}.", "Highly impressed by this {item}.",
        "Best {item} in town.", "I've used this {item} for years and they never disappoint.",
        "Such a pleasant experience with this {item}.", "This {item} deserves every good review it gets.",
        "Wonderful {item}.", "Finally, a {item} that gets it right.",
    ],
    ("service", NEG): [
        "Awful experience with this {item}.", "Deeply unimpressed by this {item}.",
        "Worst {item} in town.", "I've used this {item} for years and it has gone downhill badly.",
        "Such an unpleasant experience with this {item}.", "This {item} deserves every bad review it gets.",
        "Dreadful {item}.", "Yet another {item} that gets everything wrong.",
    ],
}

CLOSERS = {
    ("product", POS): [
        "Highly recommend.", "Would buy again.", "Five stars.", "Worth every penny.",
        "Buying another one for my sister.", "Couldn't be happier.", "Ten out of ten.", "Great purchase.",
    ],
    ("product", NEG): [
        "Avoid.", "Returning it tomorrow.", "One star.", "Save your money.", "Never again.",
        "Complete waste.", "Sending it back.", "Very poor.",
    ],
    ("screen", POS): [
        "Highly recommend.", "Can't wait to watch it again.", "A must see.", "Five stars.",
        "Already looking forward to the next one.", "Don't miss it.", "Loved every minute.",
    ],
    ("screen", NEG): [
        "Skip it.", "Two hours I will never get back.", "Not worth your time.", "One star.",
        "I won't be watching the next one.", "Avoid.", "What a waste of an evening.",
    ],
    ("read", POS): [
        "Highly recommend.", "Already reading it a second time.", "A must read.", "Five stars.",
        "Can't wait for the next one.", "Loved every page.",
    ],
    ("read", NEG): [
        "Skip it.", "Not worth your time.", "One star.", "I won't be picking up the next one.",
        "Avoid.", "What a waste of a weekend.",
    ],
    ("service", POS): [
        "Highly recommend.", "I'll definitely be back.", "Five stars.", "Thank you so much.",
        "Ask for Maria, she is brilliant.", "Already booked my next visit.", "Couldn't fault them.",
    ],
    ("service", NEG): [
        "Avoid.", "Never again.", "One star.", "Take your business elsewhere.",
        "I've filed a complaint.", "Zero stars if I could.", "Won't be going back.",
    ],
}

# Harder cases: polarity carried by negation. "*" applies to every family.
NEGATION = {
    ("*", POS): [
        "Honestly, not bad at all.", "I was not disappointed.", "I can't complain about anything.",
        "No complaints so far.", "I have zero regrets.", "I didn't expect much, but it turned out great.",
        "I wasn't sure at first, but it won me over.", "Nothing to dislike here.",
        "Not cheap, but worth it.", "Can't fault it.", "I could not be happier.",
        "It isn't perfect, but it's really good.", "Didn't disappoint one bit.",
        "Not what I expected, it's far better.",
    ],
    ("*", NEG): [
        "Not worth the money.", "Not as good as the reviews claim.", "I wouldn't recommend it to anyone.",
        "Nothing special, and overpriced.", "I can't recommend it.", "Not good, not even close.",
        "I'm not impressed.", "I don't see what the fuss is about.", "It isn't worth half the price.",
        "There is nothing good to say about it.", "It did not live up to the hype.",
        "Not once did it meet my expectations.",
    ],
    ("product", POS): ["It never once let me down.", "Not a single issue in {n} months.", "Never had a problem with it."],
    ("product", NEG): ["It doesn't do what it promises.", "It never worked properly.", "It didn't last a month.",
                       "I wouldn't even give it away."],
    ("screen", POS): ["Not a single boring minute.", "I didn't check my phone once."],
    ("screen", NEG): ["Not a single memorable scene.", "I couldn't wait for it to end."],
    ("read", POS): ["Not a single dull page.", "I couldn't stop listening."],
    ("read", NEG): ["Not a single likeable character.", "I couldn't get into it at all."],
    ("service", POS): ["They never once let me down.", "Not a single problem in {n} visits."],
    ("service", NEG): ["They don't care about their customers.", "Never using them again."],
}

# Harder cases: mixed reviews that lean one way: (minor opposite point, main point).
MIXED_MINOR = {
    # minor complaints inside an overall positive review
    ("product", POS): ["the packaging was a bit battered", "it's a little pricey", "delivery took longer than promised",
                       "the instructions are confusing", "it took a while to get used to", "the colour is slightly off",
                       "the manual is useless"],
    ("screen", POS): ["the first half hour is slow", "it runs a little long", "the villain is a bit thin",
                      "a couple of scenes drag"],
    ("read", POS): ["the first few chapters are slow", "the cover is ugly", "it's a bit long",
                    "the middle drags a little"],
    ("service", POS): ["the parking is a pain", "the wait was longer than expected", "it's not the cheapest",
                       "booking online is clunky"],
    # minor praise inside an overall negative review
    ("product", NEG): ["it looks nice", "the price is right", "the box was well packed", "delivery was quick",
                       "the colour is lovely", "the setup was easy"],
    ("screen", NEG): ["the trailer was great", "the opening scene is promising", "the costumes are lovely",
                      "the soundtrack is decent"],
    ("read", NEG): ["the cover is beautiful", "the first chapter is promising", "the idea is clever",
                    "the narrator tries hard"],
    ("service", NEG): ["the staff were polite", "the location is convenient", "the website looks nice",
                       "the prices seemed fair at first"],
}
MIXED_MAJOR = {
    ("product", POS): ["overall I love it", "the quality more than makes up for it", "it works brilliantly"],
    ("screen", POS): ["overall I loved it", "the last act more than makes up for it", "it is wonderful"],
    ("read", POS): ["overall I loved it", "the ending more than makes up for it", "it is a wonderful read"],
    ("service", POS): ["overall it was excellent", "the service more than makes up for it",
                       "I'd happily go back"],
    ("product", NEG): ["it broke after {d} days", "the quality is terrible", "it barely works"],
    ("screen", NEG): ["overall it was a huge disappointment", "the rest is a mess", "it is a chore to sit through"],
    ("read", NEG): ["overall it was a huge disappointment", "the rest is a mess", "it is a chore to get through"],
    ("service", NEG): ["overall it was a disaster", "everything else went wrong", "I would not go back"],
}
MIXED_FORMS = [
    "{minor}, but {major}.", "Although {minor}, {major}.", "Sure, {minor}. Still, {major}.",
    "{minor}. That said, {major}.", "{minor}, however {major}.", "Even though {minor}, {major}.",
]

SHORT = {
    ("*", POS): ["Love it!", "Perfect.", "So good.", "Brilliant, thank you.", "Very happy.",
                 "Great {item}, would recommend.", "Superb {item}."],
    ("*", NEG): ["Hate it.", "Rubbish.", "So bad.", "Awful, just awful.", "Very unhappy.",
                 "Terrible {item}, would not recommend.", "Useless {item}."],
    ("product", POS): ["Exactly what I needed.", "Works as described."],
    ("product", NEG): ["Broken on arrival.", "Not what I ordered."],
    ("service", POS): ["Quick and friendly.", "Great service."],
    ("service", NEG): ["Slow and rude.", "Terrible service."],
}


def _pool(table: dict, family: str, label: int) -> list[str]:
    return table.get(("*", label), []) + table.get((family, label), [])


def _fill(rng: random.Random, s: str, item: str) -> str:
    return s.format(
        item=item,
        n=rng.choice([2, 3, 4, 5, 6, 8, 10, 12]),
        d=rng.choice([2, 3, 4, 5, 6, 10]),
        h=rng.choice([2, 3, 4, 5, 6]),
        m=rng.choice([5, 10, 15, 20]),
    )


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _sentence(clause: str) -> str:
    clause = clause.strip()
    if not clause:
        return clause
    clause = _cap(clause)
    return clause if clause[-1] in ".!?" else clause + "."


def make_review(rng: random.Random, label: int) -> str:
    group = GROUPS[rng.choice(sorted(GROUPS))]
    fam = group["family"]
    item = rng.choice(group["items"])
    aspects = group[label] + FAMILY_ASPECTS[(fam, label)]
    opener = lambda: rng.choice(OPENERS[(fam, label)])  # noqa: E731
    closer = lambda: rng.choice(CLOSERS[(fam, label)])  # noqa: E731
    form = rng.random()
    if form < 0.30:      # opener, aspect, maybe a closer
        parts = [opener(), _sentence(rng.choice(aspects)), closer() if rng.random() < 0.7 else ""]
    elif form < 0.52:    # two aspects, maybe a closer
        a, b = rng.sample(aspects, 2)
        joiner = rng.choice([", and ", ", plus ", ". Also, ", " and ", ". On top of that, "])
        parts = [_sentence(a + joiner + b), closer() if rng.random() < 0.6 else ""]
    elif form < 0.68:    # negation carries the polarity
        neg = rng.choice(_pool(NEGATION, fam, label))
        r = rng.random()
        if r < 0.35:
            parts = [f"Review of the {item}:" if rng.random() < 0.3 else opener(), neg]
        elif r < 0.7:
            parts = [neg, _sentence(rng.choice(aspects))]
        else:
            parts = [_sentence(rng.choice(aspects)), neg]
        if rng.random() < 0.3:
            parts.append(closer())
    elif form < 0.86:    # mixed, leaning towards `label`
        minor = rng.choice(MIXED_MINOR[(fam, label)])
        major = rng.choice(MIXED_MAJOR[(fam, label)] + aspects)
        body = rng.choice(MIXED_FORMS).format(minor=minor, major=major)
        body = " ".join(_sentence(s) for s in body.split(". "))
        parts = [opener() if rng.random() < 0.2 else "", body, closer() if rng.random() < 0.2 else ""]
    elif form < 0.93:    # short
        parts = [rng.choice(_pool(SHORT, fam, label))]
        if rng.random() < 0.4:
            parts.append(_sentence(rng.choice(aspects)))
    else:                # aspect first, then a verdict
        parts = [_sentence(rng.choice(aspects)), opener() if rng.random() < 0.5 else closer()]
    text = " ".join(p for p in parts if p)
    text = _fill(rng, text, item)
    return re.sub(r"\s+", " ", text).strip()


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def generate(seed: int = SEED, per_class: int = PER_CLASS) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    seen: set[str] = set()
    by_label: dict[int, list[str]] = {NEG: [], POS: []}
    attempts = 0
    while min(len(v) for v in by_label.values()) < per_class:
        attempts += 1
        if attempts > per_class * 200:
            raise RuntimeError("phrase pools too small for the requested size")
        label = NEG if len(by_label[NEG]) < len(by_label[POS]) else POS if len(by_label[POS]) < len(by_label[NEG]) \
            else rng.randint(0, 1)
        text = make_review(rng, label)
        key = _norm(text)
        if not key or key in seen:
            continue
        seen.add(key)
        by_label[label].append(text)
    train: list[dict] = []
    evals: list[dict] = []
    n_eval = int(round(per_class * EVAL_FRACTION))
    for label in (NEG, POS):
        texts = by_label[label]
        rng.shuffle(texts)
        evals += [{"text": t, "label": label} for t in texts[:n_eval]]
        train += [{"text": t, "label": label} for t in texts[n_eval:]]
    rng.shuffle(train)
    rng.shuffle(evals)
    return train, evals


def _dump(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate the shipped sentiment sample.")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--per-class", type=int, default=PER_CLASS)
    ap.add_argument("--check", action="store_true", help="exit 1 if the files in --out differ from a fresh run")
    args = ap.parse_args(argv)
    train, evals = generate(args.seed, args.per_class)
    assert not {_norm(r["text"]) for r in train} & {_norm(r["text"]) for r in evals}
    files = {"train.jsonl": _dump(train), "eval.jsonl": _dump(evals)}
    if args.check:
        stale = [n for n, body in files.items()
                 if not (args.out / n).exists() or (args.out / n).read_text(encoding="utf-8") != body]
        if stale:
            print(f"stale: {', '.join(stale)} (run make_sample.py)", file=sys.stderr)
            return 1
        print("sample is up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (args.out / name).write_text(body, encoding="utf-8")
    print(f"wrote {len(train)} train + {len(evals)} eval reviews to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
