"""make_sample.py's groups of reviewed things: family (product | screen | read | service), items, aspects.

Data only: the phrase pools are hand-written for this project. Changing any phrase changes the
generated sample (run make_sample.py to rewrite it; tests check it is up to date).
"""
from __future__ import annotations

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
