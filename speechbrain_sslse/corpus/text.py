"""English sentences spoken by the synthetic speakers, and how they are shared out.

``SA1`` and ``SA2`` are TIMIT's two dialect sentences, read by every speaker (as in
TIMIT). ``SENTENCES`` is the project's own pool of simple, phonetically varied
sentences (no digits or abbreviations, so that eSpeak reports exactly one word
event per written word); each speaker reads a distinct subset of it, and each
pool sentence is read by several speakers, like TIMIT's ``SX`` sentences.
"""

import re

SA1 = "She had your dark suit in greasy wash water all year."
SA2 = "Don't ask me to carry an oily rag like that."

SENTENCES = (
    "The old wooden bridge creaked as the children ran across it.",
    "A cold wind blew through the empty market square at dawn.",
    "Please put the blue cups on the top shelf of the cupboard.",
    "My brother planted tomatoes and beans behind the garage.",
    "The train to the coast leaves from the second platform.",
    "She painted the kitchen walls a pale shade of yellow.",
    "We watched the storm roll in over the grey hills.",
    "The baker sells fresh bread every morning before seven.",
    "His bicycle has a squeaky chain and a flat back tyre.",
    "Our neighbours keep three noisy geese in their yard.",
    "The river flooded the low fields after the spring rain.",
    "Every Sunday they walk the dog along the sandy beach.",
    "The museum opens its new exhibition on ancient ships next week.",
    "A tall man in a grey coat waited by the station clock.",
    "The soup needs more salt and a little black pepper.",
    "Thick fog covered the harbour until late in the afternoon.",
    "The teacher asked the class to read the first chapter aloud.",
    "Bright lanterns hung from the branches of the cherry tree.",
    "The farmer drove his tractor slowly down the narrow lane.",
    "Nobody remembered to lock the back door last night.",
    "The library closes early on the first Friday of the month.",
    "A small boat drifted past the lighthouse at sunset.",
    "The orchestra played a quiet waltz before the interval.",
    "Her grandmother knits warm scarves for the whole family.",
    "Fresh snow made the mountain road dangerous for drivers.",
    "The cat slept all afternoon on the warm windowsill.",
    "We found an old map hidden inside the leather trunk.",
    "The engineer checked every bolt on the steel frame twice.",
    "Heavy rain drummed on the tin roof of the shed.",
    "The children built a castle of sand near the water.",
    "A flock of starlings swept over the roofs of the town.",
    "He forgot his umbrella on the bus again this morning.",
    "The shop on the corner sells newspapers and sweets.",
    "They rowed across the lake to the little green island.",
    "The doctor told him to rest his knee for a week.",
    "Strong coffee and warm toast make a simple breakfast.",
    "The guide led the tourists through the dark stone tunnel.",
    "Wild roses grow along the fence at the bottom of the garden.",
    "The pilot announced a short delay because of the weather.",
    "My sister collects postcards from every city she visits.",
    "The kettle whistled loudly in the quiet kitchen.",
    "A young fox crept across the lawn in the moonlight.",
    "The mechanic replaced the brakes on the delivery van.",
    "We sang songs around the fire until the stars came out.",
    "The bank on the high street has changed its opening hours.",
    "Please speak slowly so that everyone can follow the story.",
    "The apple trees were heavy with fruit in late summer.",
    "A loud bell rang at noon from the church tower.",
    "The hikers rested beside a clear stream in the valley.",
    "The new bridge will connect the two halves of the village.",
    "He wrapped the fragile vase in several layers of paper.",
    "The market was crowded with people buying fruit and fish.",
    "Her voice echoed through the long empty corridor.",
    "The gardener raked the fallen leaves into a large pile.",
    "Our flight landed smoothly despite the strong crosswind.",
    "The clock in the hall stopped exactly at midnight.",
    "They painted a bright mural on the wall of the school.",
    "The wooden ladder leaned against the side of the barn.",
    "A gentle breeze carried the smell of the sea inland.",
    "The students gathered in the hall for the morning meeting.",
    "The chef chopped onions while the sauce slowly simmered.",
    "The path through the forest was soft with pine needles.",
    "My uncle repairs old radios in his spare time.",
    "The ferry crossed the bay in less than an hour.",
    "A thin layer of ice covered the surface of the pond.",
    "The musicians tuned their violins before the concert began.",
    "She wrote a long letter to her friend across the ocean.",
    "The goats climbed easily over the rocky hillside.",
    "We waited patiently for the rain to stop.",
    "The carpenter measured the window frame with great care.",
    "Bright red poppies filled the meadow beside the road.",
    "The lorry delivered a load of bricks to the building site.",
    "The owl hooted softly from the top of the old oak.",
    "The queue for the museum stretched around the block.",
    "He poured the milk slowly into the bowl of oats.",
    "The castle walls were built from huge grey stones.",
    "The nurse checked the patient's temperature every hour.",
    "A sudden gust of wind blew the papers off the desk.",
    "The village held a festival with music and dancing.",
    "My cousin is learning to play the drums.",
    "The fishermen mended their nets on the stone pier.",
    "The sun rose slowly over the quiet sleeping town.",
    "Her shoes were soaked after walking through the wet grass.",
    "The workers painted white lines on the new car park.",
    "A heavy book fell from the shelf with a loud thump.",
    "The bees were busy among the lavender bushes.",
    "The captain ordered the crew to lower the sails.",
    "We bought a basket of strawberries at the farm gate.",
    "The lamp on the desk gave a warm orange glow.",
    "The boy kicked the ball high over the garden wall.",
    "The plumber fixed the leaking pipe under the sink.",
    "A narrow staircase led up to the attic room.",
    "The photographer waited hours for the perfect light.",
    "The horses galloped across the open field toward the trees.",
    "Our teacher showed us how to grow crystals from salt.",
    "The candles flickered as the door swung open.",
    "The tailor shortened the sleeves of the new jacket.",
    "The grass was still wet with the morning dew.",
    "A group of swans glided slowly along the canal.",
    "The postman whistled a tune as he walked up the hill.",
    "The heavy curtains kept the room dark and cool.",
    "Her laughter filled the small crowded cafe.",
    "The old mill by the river now houses a bakery.",
    "We followed the footprints in the snow to the cabin.",
    "The referee blew the whistle to start the second half.",
    "The glass jar was full of buttons of every colour.",
    "The hills turned gold in the light of the evening sun.",
    "The dentist cleaned his teeth and checked the fillings.",
    "A faint rumble of thunder came from the distant hills.",
    "The students carried their books across the wet courtyard.",
    "The little girl drew a picture of a purple elephant.",
    "Smoke curled from the chimney of the stone cottage.",
    "The builders laid the foundations before the frost arrived.",
    "He always reads the newspaper while drinking his tea.",
    "The road wound slowly up the side of the mountain.",
    "A bright kite danced in the wind above the dunes.",
    "The sailors sang as they hauled the ropes on deck.",
    "Her garden is full of herbs like mint and thyme.",
    "The jury listened carefully to the final witness.",
    "Frogs croaked loudly in the marsh all through the night.",
    "The waiter brought a jug of cold water to the table.",
    "The painter mixed blue and yellow to make green.",
    "The broken gate swung back and forth in the wind.",
    "A long line of ducks waddled toward the pond.",
    "The shepherd counted his sheep as they passed the gate.",
    "The stadium lights came on as the evening grew dark.",
    "She carefully folded the map and put it in her bag.",
    "The workshop smelled of sawdust and fresh varnish.",
    "A family of rabbits lives under the old shed.",
    "The bus driver waited for the last passenger to sit down.",
    "The rain stopped and a rainbow appeared over the bay.",
    "He polished his boots until they shone like glass.",
    "The choir rehearsed every Thursday evening in the church.",
    "Golden leaves drifted down onto the quiet river.",
    "The hotel room had a view of the busy harbour.",
    "The blacksmith hammered the glowing iron into shape.",
    "The twins wore matching jumpers to the birthday party.",
    "A rusty anchor lay half buried in the sand.",
    "The scientist wrote her results in a small notebook.",
    "The children giggled at the clown's enormous shoes.",
    "The storm knocked down several trees along the road.",
    "The violinist bowed as the audience began to clap.",
    "Warm bread and honey were served with the tea.",
    "The climbers reached the summit just before noon.",
    "The baby slept peacefully in the shade of the tree.",
    "The miners returned to the surface covered in dust.",
    "The autumn fair sold pumpkins, apples and hot cider.",
    "A lonely seagull circled above the fishing boats.",
    "The librarian stamped the books and handed them back.",
    "Dark clouds gathered quickly over the valley.",
)

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def words(text):
    """Lower-case words of a sentence, punctuation removed (apostrophes kept), as in TIMIT's ``.WRD``.

    Example
    -------
    >>> words("Don't ask me to carry an oily rag like that.")
    ["don't", 'ask', 'me', 'to', 'carry', 'an', 'oily', 'rag', 'like', 'that']
    """
    return [w.lower() for w in _WORD.findall(text)]


def word_label(token):
    """The ``.WRD`` label of one word as eSpeak reports it (``"dark,"`` -> ``"dark"``).

    Example
    -------
    >>> word_label("Year."), word_label("patient's")
    ('year', "patient's")
    """
    found = _WORD.findall(token)
    return "".join(found).lower() if found else token.lower()


def speaker_sentences(speaker_index, num_speakers, per_speaker, order):
    """Pool indices of the ``SX`` sentences read by one speaker.

    Speaker ``k`` reads ``per_speaker`` consecutive sentences of the (shuffled) pool
    starting at ``k * stride``; the stride is chosen so that each sentence is read
    by several speakers, and a speaker never reads the same sentence twice.

    Arguments
    ---------
    speaker_index : int
        Index ``k`` of the speaker.
    num_speakers : int
        Number of speakers.
    per_speaker : int
        Number of ``SX`` sentences per speaker (at most ``len(order)``).
    order : sequence of int
        A permutation of the pool's indices.

    Returns
    -------
    list of int

    Example
    -------
    >>> speaker_sentences(1, 4, 3, list(range(10)))
    [1, 2, 3]
    """
    pool = len(order)
    if per_speaker > pool:
        raise ValueError(f"{per_speaker} sentences per speaker but only {pool} in the pool")
    stride = max(1, min(round(pool / max(num_speakers, 1)), per_speaker // 2))
    start = speaker_index * stride
    return [int(order[(start + j) % pool]) for j in range(per_speaker)]
