"""Tiny AG News (CSV) and IMDB (aclImdb tree) files in exactly the real on-disk formats.

AG News: ``ag_news/{train,test}.csv``, no header, every field double-quoted, rows
``"class index","title","description"`` (1=World, 2=Sports, 3=Business, 4=Sci/Tech), with the
scraping artefacts of the real files (a backslash for a line break, ``#39;`` for an apostrophe).
IMDB: ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (ratings 1-4 negative, 7-10 positive),
``<br />`` line breaks, plus the files the loader must ignore (``train/unsup``, ``imdb.vocab``).
"""

from __future__ import annotations

import csv
from pathlib import Path

AG_TRAIN = [
    (1, "Iraq Interim Government Sets Election Date (Reuters)",
     "Reuters - Iraq's interim government said on Monday that national\\elections will be held "
     "in January despite the violence."),
    (1, "UN Envoy Urges Talks on Darfur Crisis",
     "The United Nations envoy to Sudan called on the government and rebels to return to "
     "peace talks in Abuja."),
    (1, "Earthquake Shakes Northern Japan",
     "A strong earthquake struck northern Japan on Saturday, killing at least six people and "
     "cutting power to thousands of homes."),
    (1, "EU Foreign Ministers Meet Over Iran Nuclear Plan",
     "European Union foreign ministers met in Brussels to discuss Iran #39;s nuclear programme "
     "and the sanctions the United States wants."),
    (1, "Afghan President Survives Rocket Attack",
     "AFP - A rocket narrowly missed the helicopter carrying Afghanistan's president during a "
     "campaign visit, officials said."),
    (1, "Palestinian Leader Flown to Paris Hospital",
     "The ailing Palestinian leader was flown to a military hospital near Paris for treatment, "
     "aides said on Friday."),
    (1, "Floods Kill Dozens in Haiti",
     "Heavy rains from a tropical storm caused floods and mudslides in Haiti, killing dozens "
     "and leaving thousands homeless."),
    (1, "Russian Parliament Approves Kyoto Protocol",
     "Russia's lower house of parliament voted to ratify the Kyoto climate treaty, clearing "
     "the way for it to take effect."),
    (1, "North Korea Rejects Nuclear Talks Proposal",
     "North Korea said it would not attend new six-party talks on its nuclear programme while "
     "Washington keeps its hostile policy."),
    (1, "Pakistan Arrests Suspects After Mosque Bombing",
     "Police in Pakistan arrested several suspects after a bomb exploded at a crowded mosque "
     "during Friday prayers."),
    (2, "Phelps Wins Fourth Gold in Athens",
     "Michael Phelps won his fourth gold medal of the Athens Olympics on Thursday, setting an "
     "Olympic record in the butterfly."),
    (2, "Red Sox Beat Yankees to Force Game Seven",
     "The Boston Red Sox beat the New York Yankees 4-2 on Tuesday night to force a deciding "
     "game seven in the league championship."),
    (2, "Federer Cruises Into US Open Semifinals",
     "World number one Roger Federer beat Andre Agassi in five sets to reach the semifinals of "
     "the US Open."),
    (2, "Schumacher Clinches Seventh Title",
     "Michael Schumacher won the Belgian Grand Prix drivers #39; title for a record seventh "
     "time with four races to go."),
    (2, "Patriots Extend Winning Streak to 20",
     "AP - Tom Brady threw two touchdown passes as the New England Patriots won their 20th "
     "straight game on Sunday."),
    (2, "Owen Scores First Goal for Real Madrid",
     "Michael Owen scored his first goal for Real Madrid as the Spanish club beat Osasuna in "
     "the league on Saturday."),
    (2, "Hewitt Reaches Final in Washington",
     "Lleyton Hewitt beat his opponent in straight sets to reach the final of the Legg Mason "
     "tennis classic."),
    (2, "US Women Win Olympic Soccer Gold",
     "The United States women's soccer team beat Brazil 2-1 in extra time to win the Olympic "
     "gold medal."),
    (2, "Manchester United Draw at Everton",
     "Manchester United were held to a goalless draw at Everton, falling further behind the "
     "league leaders Chelsea."),
    (2, "Cardinals Clinch National League Pennant",
     "The St. Louis Cardinals beat the Houston Astros in game seven to reach the World Series "
     "for the first time since 1987."),
    (3, "Wall St. Bears Claw Back Into the Black (Reuters)",
     "Reuters - Short-sellers, Wall Street's dwindling\\band of ultra-cynics, are seeing green "
     "again."),
    (3, "Oil Prices Hit Record High",
     "Crude oil prices rose to a record above \\$50 a barrel on worries about supplies from "
     "Iraq and the Gulf of Mexico."),
    (3, "Google Shares Jump in Market Debut",
     "Shares of Google rose 18 percent in their first day of trading on the Nasdaq after the "
     "company's unusual auction."),
    (3, "Fed Raises Interest Rates a Quarter Point",
     "The Federal Reserve raised its key interest rate by a quarter point to 1.75 percent, "
     "saying the economy had regained momentum."),
    (3, "Oracle Raises Bid for PeopleSoft",
     "Oracle raised its hostile takeover offer for rival software maker PeopleSoft to \\$8.8 "
     "billion, its fourth bid."),
    (3, "Dollar Falls Against Euro on Trade Gap",
     "The dollar fell to a new low against the euro after figures showed the US trade deficit "
     "widened in August."),
    (3, "Airline Files for Bankruptcy Protection",
     "US Airways filed for Chapter 11 bankruptcy protection for the second time in two years, "
     "blaming high fuel costs."),
    (3, "Retail Sales Rise More Than Expected",
     "Sales at US retailers rose more than expected in September as shoppers bought cars and "
     "clothing, the Commerce Department said."),
    (3, "Merck Shares Plunge After Drug Recall",
     "Shares of Merck fell 27 percent after the drug maker withdrew its arthritis painkiller "
     "Vioxx from the market."),
    (3, "Stocks End Higher as Oil Retreats",
     "US stocks closed higher on Friday as oil prices eased from their record, lifting "
     "airline and retail shares."),
    (4, "NASA Readies Shuttle for Return to Flight",
     "NASA engineers are preparing the space shuttle Discovery for its first launch since the "
     "Columbia disaster."),
    (4, "Microsoft Releases Windows XP Service Pack 2",
     "Microsoft released a major security update for Windows XP, adding a firewall that is "
     "switched on by default."),
    (4, "Scientists Find Water Signs on Mars",
     "The Mars rover Opportunity found evidence that liquid water once flowed across the "
     "surface of the red planet, NASA said."),
    (4, "New Virus Spreads Through E-mail",
     "A new version of the Mydoom worm spread quickly through e-mail on Monday, security "
     "companies warned."),
    (4, "Apple Unveils New iMac",
     "Apple Computer unveiled a new iMac with the computer built into the flat-panel display, "
     "priced from \\$1,299."),
    (4, "IBM Builds Fastest Supercomputer",
     "IBM said its Blue Gene supercomputer had become the fastest in the world, overtaking a "
     "Japanese machine."),
    (4, "Study Links Gene to Longer Life",
     "Researchers have identified a gene in mice that appears to extend lifespan, according "
     "to a study published in Science."),
    (4, "Sony Cuts Price of PlayStation 2",
     "Sony cut the price of its PlayStation 2 games console in the United States ahead of the "
     "holiday shopping season."),
    (4, "Hubble Telescope Spots Distant Galaxies",
     "The Hubble Space Telescope has captured images of some of the most distant galaxies ever "
     "seen, astronomers said."),
    (4, "Intel Delays Release of New Chip",
     "Intel said it would delay the launch of its fastest Pentium 4 processor, the latest in a "
     "series of setbacks."),
]

AG_TEST = [
    (1, "Thousands Flee as Typhoon Nears Philippines",
     "Thousands of villagers fled their homes as a powerful typhoon approached the northern "
     "Philippines on Tuesday."),
    (1, "Sudan Agrees to Disarm Militias",
     "Sudan's government agreed to disarm the militias blamed for attacks on villagers in "
     "Darfur, the United Nations said."),
    (2, "Yankees Rally Past Twins in Opener",
     "The New York Yankees rallied in the ninth inning to beat the Minnesota Twins in the "
     "opening game of the playoffs."),
    (2, "Radcliffe Pulls Out of Marathon",
     "Paula Radcliffe dropped out of the Olympic marathon in tears, four miles from the finish "
     "in Athens."),
    (3, "Yukos Shares Slump on Tax Claim",
     "Shares in Russian oil company Yukos fell after the tax ministry said it owed billions of "
     "dollars in back taxes."),
    (3, "Housing Starts Fall in July",
     "Construction of new homes fell more than expected in July, the Commerce Department said "
     "on Tuesday."),
    (4, "Cassini Probe Sends Images of Titan",
     "The Cassini spacecraft sent back the sharpest pictures yet of Saturn's moon Titan, "
     "revealing a hazy orange world."),
    (4, "Firefox Browser Passes Million Downloads",
     "The open-source Firefox web browser was downloaded more than a million times in its "
     "first days, the Mozilla Foundation said."),
]

IMDB_REVIEWS = {
    ("train", "pos"): [
        (10, "One of the finest films I have seen in years.<br /><br />The acting is superb, and "
             "the story stays with you long after the credits roll."),
        (9, "A warm, funny and touching movie. The cast is wonderful and the script is sharp. "
            "I laughed and cried."),
        (8, "I went in expecting little and came out delighted.<br /><br />Great direction, a "
            "lovely score and a memorable lead performance."),
        (7, "Not perfect, but a very enjoyable film with a clever plot and some beautiful "
            "photography."),
        (10, "A masterpiece. Every scene is crafted with care and the ending is perfect."),
        (9, "The best performance of her career. A moving, brilliant film that I will watch "
            "again."),
        (8, "Smart, stylish and exciting from start to finish.<br />Highly recommended."),
        (7, "A charming little comedy with a great sense of humour and a likeable cast."),
    ],
    ("train", "neg"): [
        (1, "This is the worst movie I have ever seen.<br /><br />The plot makes no sense and "
            "the acting is terrible."),
        (2, "A boring, predictable mess. I wanted to leave after twenty minutes."),
        (3, "The dialogue is awful and the jokes fall flat. What a waste of a talented cast."),
        (4, "Some nice shots, but the story is dull and the ending is ridiculous."),
        (1, "Painfully bad. Wooden acting, a lazy script and no suspense at all.<br />Avoid it."),
        (2, "I cannot believe anyone funded this film. Stupid, slow and badly edited."),
        (3, "Disappointing. The trailer was better than the movie, which drags on forever."),
        (4, "The lead tries hard but the script is weak and the direction is clumsy."),
    ],
    ("test", "pos"): [
        (10, "Brilliant from the first frame to the last. A wonderful, heartfelt story."),
        (8, "Funny and clever, with a great cast.<br /><br />I enjoyed every minute of it."),
        (9, "A beautiful film with superb acting and a haunting score."),
    ],
    ("test", "neg"): [
        (1, "Terrible. The worst script and the worst acting I have seen this year."),
        (2, "Dull and predictable.<br /><br />A complete waste of time."),
        (3, "The plot is silly and the characters are boring. I almost fell asleep."),
    ],
}


def write_ag_news(root: Path) -> None:
    folder = root / "ag_news"
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.csv", AG_TRAIN), ("test.csv", AG_TEST)):
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    (folder / "classes.txt").write_text("World\nSports\nBusiness\nSci/Tech\n")


def write_imdb(root: Path) -> None:
    base = root / "aclImdb"
    for (split, label), reviews in IMDB_REVIEWS.items():
        folder = base / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for i, (rating, text) in enumerate(reviews):
            (folder / f"{i}_{rating}.txt").write_text(text, encoding="utf-8")
    unsup = base / "train" / "unsup"
    unsup.mkdir(parents=True, exist_ok=True)
    (unsup / "0_0.txt").write_text("An unlabelled review that the classifier must not read.")
    (base / "imdb.vocab").write_text("the\nand\na\nof\nto\n")
    (base / "README").write_text("Large Movie Review Dataset v1.0\n")


WRITERS = {"ag_news": write_ag_news, "imdb": write_imdb}
