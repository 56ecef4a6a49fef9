"""make_sample.py's phrase pools shared by a whole family: aspects, openers, closers, negations,
mixed reviews and short ones, keyed by (family, label); "*" is every family.

Data only (see sample_groups.py).
"""
from __future__ import annotations

from sample_groups import NEG, POS

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
