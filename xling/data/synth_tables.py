"""The tables of the `synth` data set (`xling.data.synth`): names, nouns with their grammatical forms, the
fifteen problem templates written out in the 11 languages, and each language's final-answer line.

In: nothing (data). Out: `NAMES` (language -> (gender, nominative, genitive, dative) per name; index i has
the same gender in every language), `OBJECTS` and `NOUNS` (language -> noun -> count phrase, "how many",
plural, classifier ... forms), `TEMPLATES` (each with how its numbers are drawn, its answer, an English
worked solution and its text per language), `TYPES` and `FINAL_ANSWER`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

# -- names: (gender, nominative, genitive, dative); index i has the same gender in every language ---

NameForms = tuple[str, str, str, str]


def _plain(*names: str) -> list[NameForms]:
    return [("m" if i % 2 == 0 else "f", n, n, n) for i, n in enumerate(names)]


NAMES: dict[str, list[NameForms]] = {
    "en": _plain("James", "Emily", "Noah", "Olivia", "Ethan", "Grace", "Liam", "Chloe"),
    "es": _plain("Carlos", "Lucía", "Mateo", "Sofía", "Javier", "Carmen", "Diego", "Elena"),
    "fr": _plain("Louis", "Camille", "Hugo", "Chloé", "Julien", "Léa", "Antoine", "Manon"),
    "de": _plain("Lukas", "Anna", "Felix", "Lena", "Jonas", "Marie", "Paul", "Sophie"),
    "ru": [("m", "Иван", "Ивана", "Ивану"), ("f", "Мария", "Марии", "Марии"),
           ("m", "Дмитрий", "Дмитрия", "Дмитрию"), ("f", "Анна", "Анны", "Анне"),
           ("m", "Сергей", "Сергея", "Сергею"), ("f", "Ольга", "Ольги", "Ольге"),
           ("m", "Алексей", "Алексея", "Алексею"), ("f", "Наталья", "Натальи", "Наталье")],
    "bn": [("m", "রহিম", "রহিমের", "রহিমকে"), ("f", "আনিকা", "আনিকার", "আনিকাকে"),
           ("m", "সুমন", "সুমনের", "সুমনকে"), ("f", "রিয়া", "রিয়ার", "রিয়াকে"),
           ("m", "অমিত", "অমিতের", "অমিতকে"), ("f", "মিতা", "মিতার", "মিতাকে"),
           ("m", "তানভীর", "তানভীরের", "তানভীরকে"), ("f", "নুসরাত", "নুসরাতের", "নুসরাতকে")],
    "th": _plain("สมชาย", "สุดา", "วิชัย", "มาลี", "อนุชา", "นภา", "ธีระ", "พิมพ์"),
    "sw": _plain("Juma", "Amina", "Baraka", "Neema", "Hamisi", "Zawadi", "Omari", "Rehema"),
    "zh": _plain("小明", "小红", "李雷", "韩梅梅", "王强", "张丽", "刘洋", "陈静"),
    "ja": _plain("太郎", "花子", "健太", "さくら", "翔太", "美咲", "大輔", "結衣"),
    "te": [("m", "రాము", "రాము", "రాముకు"), ("f", "సీత", "సీత", "సీతకు"),
           ("m", "రవి", "రవి", "రవికి"), ("f", "లక్ష్మి", "లక్ష్మి", "లక్ష్మికి"),
           ("m", "కిరణ్", "కిరణ్", "కిరణ్‌కు"), ("f", "ప్రియ", "ప్రియ", "ప్రియకు"),
           ("m", "సురేష్", "సురేష్", "సురేష్‌కు"), ("f", "అంజలి", "అంజలి", "అంజలికి")],
}

# -- nouns -------------------------------------------------------------------------------------
# Keys: n = count phrase ("{n} oranges"), q = "how many" phrase, pl = bare noun, cl = classifier or
# counter, de = French partitive, all = Swahili "all of them", ru = Russian forms
# (nominative 1, accusative 1, 2–4, 5+), gp = Russian genitive plural.

OBJECTS = ("orange", "pencil", "book", "egg", "ball", "sweet")
ENGLISH_PLURAL = {"orange": "oranges", "pencil": "pencils", "book": "books", "egg": "eggs", "ball": "balls",
                  "sweet": "candies"}


def _en(pl: str) -> dict:
    return {"n": "{n} " + pl, "q": "how many " + pl, "pl": pl}


def _ru(nom1: str, acc1: str, few: str, many: str) -> dict:
    return {"ru": (nom1, acc1, few, many), "q": "сколько " + many, "gp": many}


def _cl_after(pl: str, cl: str, q: str) -> dict:  # Thai: noun, number, classifier
    return {"n": pl + " {n} " + cl, "pl": pl, "cl": cl, "q": pl + q + cl}


NOUNS: dict[str, dict[str, dict]] = {
    "en": {**{k: _en(v) for k, v in ENGLISH_PLURAL.items()}, "box": _en("boxes"), "bag": _en("bags")},
    "es": {"orange": {"n": "{n} naranjas", "q": "cuántas naranjas", "pl": "naranjas"},
           "pencil": {"n": "{n} lápices", "q": "cuántos lápices", "pl": "lápices"},
           "book": {"n": "{n} libros", "q": "cuántos libros", "pl": "libros"},
           "egg": {"n": "{n} huevos", "q": "cuántos huevos", "pl": "huevos"},
           "ball": {"n": "{n} pelotas", "q": "cuántas pelotas", "pl": "pelotas"},
           "sweet": {"n": "{n} caramelos", "q": "cuántos caramelos", "pl": "caramelos"},
           "box": {"n": "{n} cajas"}, "bag": {"n": "{n} bolsas"}},
    "fr": {"orange": {"n": "{n} oranges", "de": "d'oranges", "q": "combien d'oranges", "pl": "oranges"},
           "pencil": {"n": "{n} crayons", "de": "de crayons", "q": "combien de crayons", "pl": "crayons"},
           "book": {"n": "{n} livres", "de": "de livres", "q": "combien de livres", "pl": "livres"},
           "egg": {"n": "{n} œufs", "de": "d'œufs", "q": "combien d'œufs", "pl": "œufs"},
           "ball": {"n": "{n} ballons", "de": "de ballons", "q": "combien de ballons", "pl": "ballons"},
           "sweet": {"n": "{n} bonbons", "de": "de bonbons", "q": "combien de bonbons", "pl": "bonbons"},
           "box": {"n": "{n} cartons"}, "bag": {"n": "{n} sacs"}},
    "de": {"orange": {"n": "{n} Orangen", "q": "wie viele Orangen", "pl": "Orangen"},
           "pencil": {"n": "{n} Bleistifte", "q": "wie viele Bleistifte", "pl": "Bleistifte"},
           "book": {"n": "{n} Bücher", "q": "wie viele Bücher", "pl": "Bücher"},
           "egg": {"n": "{n} Eier", "q": "wie viele Eier", "pl": "Eier"},
           "ball": {"n": "{n} Bälle", "q": "wie viele Bälle", "pl": "Bälle"},
           "sweet": {"n": "{n} Bonbons", "q": "wie viele Bonbons", "pl": "Bonbons"},
           "box": {"n": "{n} Kartons"}, "bag": {"n": "{n} Tüten"}},
    "ru": {"orange": _ru("апельсин", "апельсин", "апельсина", "апельсинов"),
           "pencil": _ru("карандаш", "карандаш", "карандаша", "карандашей"),
           "book": _ru("книга", "книгу", "книги", "книг"),
           "egg": _ru("яйцо", "яйцо", "яйца", "яиц"),
           "ball": _ru("мяч", "мяч", "мяча", "мячей"),
           "sweet": _ru("конфета", "конфету", "конфеты", "конфет"),
           "box": _ru("коробка", "коробку", "коробки", "коробок"),
           "bag": _ru("пакет", "пакет", "пакета", "пакетов"),
           "notebook": _ru("тетрадь", "тетрадь", "тетради", "тетрадей"),
           "dollar": _ru("доллар", "доллар", "доллара", "долларов"),
           "page": _ru("страница", "страницу", "страницы", "страниц"),
           "day": _ru("день", "день", "дня", "дней"),
           "km": _ru("километр", "километр", "километра", "километров"),
           "hour": _ru("час", "час", "часа", "часов"),
           "student": _ru("ученик", "ученик", "ученика", "учеников"),
           "person": _ru("человек", "человек", "человека", "человек"),
           "times": _ru("раз", "раз", "раза", "раз")},
    "bn": {k: {"n": "{n}টি " + v, "q": "কয়টি " + v, "pl": v, "cl": "টি"} for k, v in
           {"orange": "কমলা", "pencil": "পেন্সিল", "book": "বই", "egg": "ডিম", "ball": "বল",
            "sweet": "লজেন্স"}.items()},
    "th": {"orange": _cl_after("ส้ม", "ลูก", "กี่"), "pencil": _cl_after("ดินสอ", "แท่ง", "กี่"),
           "book": _cl_after("หนังสือ", "เล่ม", "กี่"), "egg": _cl_after("ไข่", "ฟอง", "กี่"),
           "ball": _cl_after("ลูกบอล", "ลูก", "กี่"), "sweet": _cl_after("ลูกอม", "เม็ด", "กี่")},
    "sw": {"orange": {"n": "machungwa {n}", "q": "machungwa mangapi", "pl": "machungwa", "all": "yote"},
           "pencil": {"n": "penseli {n}", "q": "penseli ngapi", "pl": "penseli", "all": "zote"},
           "book": {"n": "vitabu {n}", "q": "vitabu vingapi", "pl": "vitabu", "all": "vyote"},
           "egg": {"n": "mayai {n}", "q": "mayai mangapi", "pl": "mayai", "all": "yote"},
           "ball": {"n": "mipira {n}", "q": "mipira mingapi", "pl": "mipira", "all": "yote"},
           "sweet": {"n": "pipi {n}", "q": "pipi ngapi", "pl": "pipi", "all": "zote"},
           "box": {"n": "masanduku {n}"}},
    "zh": {k: {"n": "{n}" + cl + pl, "q": "多少" + cl + pl, "pl": pl, "cl": cl} for k, (pl, cl) in
           {"orange": ("橙子", "个"), "pencil": ("铅笔", "支"), "book": ("书", "本"), "egg": ("鸡蛋", "个"),
            "ball": ("皮球", "个"), "sweet": ("糖果", "颗")}.items()},
    "ja": {k: {"n": "{n}" + cl + "の" + pl, "pl": pl, "cl": cl} for k, (pl, cl) in
           {"orange": ("みかん", "個"), "pencil": ("鉛筆", "本"), "book": ("本", "冊"), "egg": ("卵", "個"),
            "ball": ("ボール", "個"), "sweet": ("あめ", "個")}.items()},
    "te": {**{k: {"n": "{n} " + v, "q": "ఎన్ని " + v, "pl": v} for k, v in
              {"orange": "నారింజ పండ్లు", "pencil": "పెన్సిళ్లు", "book": "పుస్తకాలు", "egg": "గుడ్లు",
               "ball": "బంతులు", "sweet": "చాక్లెట్లు"}.items()},
           "box": {"n": "{n} పెట్టెల"}},
}


# -- templates ---------------------------------------------------------------------------------
# Placeholders: {A} {B} names ({A.gen}, {A.dat}: cases), {a} numbers, {a:o} count phrase of the
# problem's object ({a:o.acc} accusative, {a:box} another noun), {q:o}/{Q:o} "how many",
# {pl:o} {cl:o} {de:o} {gp:o} {all:o} noun forms; [m|f] by A's gender, <m|f> by B's.


@dataclass(frozen=True)
class Template:
    key: str
    type: str
    level: int  # number of arithmetic steps
    numbers: Callable[[random.Random], dict[str, int]]
    answer: Callable[[dict[str, int]], int]
    solution: str  # English, with {a}, {pl} (English plural of the object), {ans}
    text: dict[str, str]


def _r(rng: random.Random, lo: int, hi: int) -> int:
    return rng.randint(lo, hi)


def _nums_add(rng):
    return {"a": _r(rng, 5, 40), "b": _r(rng, 2, 20)}


def _nums_sub(rng):
    a = _r(rng, 10, 60)
    return {"a": a, "b": _r(rng, 2, a - 2)}


def _nums_mul(lo_a, hi_a, lo_b, hi_b, step_a=1):
    return lambda rng: {"a": rng.randrange(lo_a, hi_a + 1, step_a), "b": _r(rng, lo_b, hi_b)}


def _nums_div(hi_b):
    def f(rng):
        a, b = _r(rng, 2, 15), _r(rng, 2, hi_b)
        return {"a": a, "b": b, "t": a * b}
    return f


def _nums_buy_give(rng):
    a, b = _r(rng, 5, 30), _r(rng, 2, 20)
    return {"a": a, "b": b, "c": _r(rng, 2, a + b - 2)}


def _nums_bags(rng):
    return {"a": _r(rng, 2, 9), "b": _r(rng, 3, 15), "c": _r(rng, 2, 20)}


def _nums_times(rng):
    return {"a": _r(rng, 3, 25), "k": _r(rng, 2, 5)}


def _nums_change(rng):
    b, c = _r(rng, 2, 8), _r(rng, 2, 15)
    return {"b": b, "c": c, "a": b * c + _r(rng, 2, 30)}


def _nums_buy_share(rng):
    k, e = _r(rng, 2, 6), _r(rng, 2, 12)
    total = k * e
    b = _r(rng, 2, max(2, min(20, total - 2)))
    return {"k": k, "e": e, "b": b, "a": total - b}


def _nums_three(rng):
    while True:
        a, b, k = _r(rng, 2, 6), _r(rng, 3, 15), _r(rng, 2, 6)
        options = [c for c in range(2, 16) if (a * b - c) % k == 0 and (a * b - c) // k >= 2]
        if options:
            c = rng.choice(options)
            return {"a": a, "b": b, "k": k, "c": c, "e": (a * b - c) // k}


TEMPLATES: tuple[Template, ...] = (
    Template("gift", "addition", 1, _nums_add, lambda v: v["a"] + v["b"],
             "Start with {a} {pl}. Receiving {b} more gives {a} + {b} = {ans} {pl}.", {
        "en": "{A} has {a:o}. {B} gives {A} {b} more. How many {pl:o} does {A} have now?",
        "es": "{A} tiene {a:o}. {B} le da {b} más. ¿{Q:o} tiene {A} ahora?",
        "fr": "{A} a {a:o}. {B} lui en donne {b} de plus. {Q:o} {A} a-t-[il|elle] maintenant ?",
        "de": "{A} hat {a:o}. {B} gibt [ihm|ihr] noch {b} dazu. {Q:o} hat {A} jetzt?",
        "ru": "У {A.gen} есть {a:o}. {B} <дал|дала> [ему|ей] ещё {b}. {Q:o} теперь у {A.gen}?",
        "bn": "{A.gen} কাছে {a:o} আছে। {B} তাকে আরও {b:o} দিল। এখন {A.gen} কাছে {q:o} আছে?",
        "th": "{A}มี{a:o} {B}ให้{pl:o}{A}เพิ่มอีก {b} {cl:o} ตอนนี้{A}มี{q:o}",
        "sw": "{A} ana {a:o}. {B} anampa {b:o} zaidi. {A} ana {q:o} sasa?",
        "zh": "{A}有{a:o}。{B}又给了{A}{b}{cl:o}。现在{A}有{q:o}？",
        "ja": "{A}は{pl:o}を{a}{cl:o}持っています。{B}が{A}に{pl:o}をさらに{b}{cl:o}あげました。"
              "{A}は今、{pl:o}を何{cl:o}持っていますか？",
        "te": "{A} దగ్గర {a:o} ఉన్నాయి. {B} {A.dat} మరో {b:o} ఇచ్చారు. ఇప్పుడు {A} దగ్గర {q:o} ఉన్నాయి?",
    }),
    Template("give-away", "subtraction", 1, _nums_sub, lambda v: v["a"] - v["b"],
             "Start with {a} {pl}. Giving away {b} leaves {a} - {b} = {ans} {pl}.", {
        "en": "{A} has {a:o}. {A} gives {b} of them to {B}. How many {pl:o} does {A} have left?",
        "es": "{A} tiene {a:o}. Le da {b} a {B}. ¿{Q:o} le quedan a {A}?",
        "fr": "{A} a {a:o}. [Il|Elle] en donne {b} à {B}. {Q:o} reste-t-il à {A} ?",
        "de": "{A} hat {a:o}. [Er|Sie] gibt {B} {b} davon ab. {Q:o} hat {A} noch?",
        "ru": "У {A.gen} есть {a:o}. [Он|Она] [отдал|отдала] {B.dat} {b}. {Q:o} осталось у {A.gen}?",
        "bn": "{A.gen} কাছে {a:o} আছে। সে {B.dat} {b:o} দিল। এখন {A.gen} কাছে {q:o} বাকি আছে?",
        "th": "{A}มี{a:o} {A}ให้{B}ไป {b} {cl:o} {A}เหลือ{q:o}",
        "sw": "{A} ana {a:o}. Anampa {B} {b:o}. {A} amebaki na {q:o}?",
        "zh": "{A}有{a:o}，给了{B}{b}{cl:o}。{A}还剩{q:o}？",
        "ja": "{A}は{pl:o}を{a}{cl:o}持っています。そのうち{b}{cl:o}を{B}にあげました。"
              "{A}の{pl:o}は何{cl:o}残っていますか？",
        "te": "{A} దగ్గర {a:o} ఉన్నాయి. వాటిలో {b} {B.dat} ఇచ్చారు. ఇప్పుడు {A} దగ్గర {q:o} మిగిలాయి?",
    }),
    Template("boxes", "multiplication", 1, _nums_mul(2, 12, 3, 24), lambda v: v["a"] * v["b"],
             "There are {a} boxes with {b} {pl} in each, so {a} × {b} = {ans} {pl}.", {
        "en": "{A} buys {a:box} of {pl:o}. Each box holds {b:o}. How many {pl:o} does {A} buy in total?",
        "es": "{A} compra {a:box} de {pl:o}. En cada caja hay {b:o}. ¿{Q:o} compra {A} en total?",
        "fr": "{A} achète {a:box} {de:o}. Chaque carton contient {b:o}. {Q:o} {A} achète-t-[il|elle] en tout ?",
        "de": "{A} kauft {a:box} {pl:o}. In jedem Karton sind {b:o}. {Q:o} kauft {A} insgesamt?",
        "ru": "{A} [купил|купила] {a:box.acc} {gp:o}. В каждой коробке {b:o}. {Q:o} всего [купил|купила] {A}?",
        "bn": "{A} {a} বাক্স {pl:o} কিনল। প্রতিটি বাক্সে {b:o} আছে। {A} মোট {q:o} কিনল?",
        "th": "{A}ซื้อ{pl:o} {a} กล่อง แต่ละกล่องมี{b:o} {A}ซื้อ{pl:o}ทั้งหมดกี่{cl:o}",
        "sw": "{A} ananunua {a:box} ya {pl:o}. Kila sanduku lina {b:o}. {A} ananunua {q:o} kwa jumla?",
        "zh": "{A}买了{a}盒{pl:o}，每盒有{b}{cl:o}。{A}一共买了{q:o}？",
        "ja": "{A}は{pl:o}を{a}箱買いました。1箱には{pl:o}が{b}{cl:o}入っています。"
              "{A}は全部で{pl:o}を何{cl:o}買いましたか？",
        "te": "{A} {a:box} {pl:o} కొన్నారు. ప్రతి పెట్టెలో {b:o} ఉన్నాయి. {A} మొత్తం {q:o} కొన్నారు?",
    }),
    Template("share", "division", 1, _nums_div(9), lambda v: v["a"],
             "{t} {pl} shared equally among {b} friends gives {t} ÷ {b} = {ans} {pl} each.", {
        "en": "{A} shares {t:o} equally among {b} friends. How many {pl:o} does each friend get?",
        "es": "{A} reparte {t:o} a partes iguales entre {b} amigos. ¿{Q:o} recibe cada amigo?",
        "fr": "{A} partage {t:o} équitablement entre {b} amis. {Q:o} chaque ami reçoit-il ?",
        "de": "{A} verteilt {t:o} gleichmäßig an {b} Freunde. {Q:o} bekommt jeder Freund?",
        "ru": "{A} [разделил|разделила] {t:o.acc} поровну между {b} друзьями. {Q:o} получил каждый друг?",
        "bn": "{A} {t:o} {b} জন বন্ধুর মধ্যে সমানভাবে ভাগ করে দিল। প্রত্যেক বন্ধু {q:o} পেল?",
        "th": "{A}แบ่ง{t:o}ให้เพื่อน {b} คนเท่า ๆ กัน เพื่อนแต่ละคนได้{q:o}",
        "sw": "{A} anagawa {t:o} kwa usawa kwa marafiki {b}. Kila rafiki anapata {q:o}?",
        "zh": "{A}把{t:o}平均分给{b}个朋友。每个朋友分到{q:o}？",
        "ja": "{A}は{pl:o}{t}{cl:o}を{b}人の友達に同じ数ずつ分けました。1人あたり何{cl:o}もらえますか？",
        "te": "{A} {t:o} {b} మంది స్నేహితులకు సమానంగా పంచారు. ఒక్కొక్కరికి {q:o} వచ్చాయి?",
    }),
    Template("price", "multiplication", 1, _nums_mul(2, 20, 2, 12), lambda v: v["a"] * v["b"],
             "{b} notebooks at {a} dollars each cost {b} × {a} = {ans} dollars.", {
        "en": "One notebook costs {a} dollars. {A} buys {b} notebooks. How many dollars does {A} pay?",
        "es": "Un cuaderno cuesta {a} dólares. {A} compra {b} cuadernos. ¿Cuántos dólares paga {A}?",
        "fr": "Un cahier coûte {a} dollars. {A} achète {b} cahiers. Combien de dollars {A} paie-t-[il|elle] ?",
        "de": "Ein Heft kostet {a} Dollar. {A} kauft {b} Hefte. Wie viele Dollar bezahlt {A}?",
        "ru": "Одна тетрадь стоит {a:dollar}. {A} [купил|купила] {b:notebook.acc}. "
              "Сколько долларов [заплатил|заплатила] {A}?",
        "bn": "একটি খাতার দাম {a} ডলার। {A} {b}টি খাতা কিনল। {A} মোট কত ডলার দিল?",
        "th": "สมุดหนึ่งเล่มราคา {a} ดอลลาร์ {A}ซื้อสมุด {b} เล่ม {A}ต้องจ่ายเงินกี่ดอลลาร์",
        "sw": "Daftari moja linagharimu dola {a}. {A} ananunua madaftari {b}. {A} analipa dola ngapi?",
        "zh": "一本笔记本{a}美元。{A}买了{b}本笔记本。{A}一共要付多少美元？",
        "ja": "ノートは1冊{a}ドルです。{A}はノートを{b}冊買いました。{A}は全部で何ドル払いましたか？",
        "te": "ఒక నోట్‌బుక్ ధర {a} డాలర్లు. {A} {b} నోట్‌బుక్‌లు కొన్నారు. {A} మొత్తం ఎన్ని డాలర్లు చెల్లించారు?",
    }),
    Template("reading", "multiplication", 1, _nums_mul(5, 40, 2, 14), lambda v: v["a"] * v["b"],
             "{a} pages a day for {b} days is {a} × {b} = {ans} pages.", {
        "en": "{A} reads {a} pages every day. How many pages does {A} read in {b} days?",
        "es": "{A} lee {a} páginas cada día. ¿Cuántas páginas lee {A} en {b} días?",
        "fr": "{A} lit {a} pages par jour. Combien de pages {A} lit-[il|elle] en {b} jours ?",
        "de": "{A} liest jeden Tag {a} Seiten. Wie viele Seiten liest {A} in {b} Tagen?",
        "ru": "{A} читает {a:page.acc} в день. Сколько страниц {A} прочитает за {b:day}?",
        "bn": "{A} প্রতিদিন {a} পৃষ্ঠা পড়ে। {b} দিনে {A} মোট কত পৃষ্ঠা পড়বে?",
        "th": "{A}อ่านหนังสือวันละ {a} หน้า ใน {b} วัน{A}จะอ่านได้กี่หน้า",
        "sw": "{A} anasoma kurasa {a} kila siku. {A} atasoma kurasa ngapi kwa siku {b}?",
        "zh": "{A}每天读{a}页书。{A}{b}天一共读多少页？",
        "ja": "{A}は毎日{a}ページずつ本を読みます。{b}日間で全部で何ページ読みますか？",
        "te": "{A} ప్రతి రోజు {a} పేజీలు చదువుతారు. {b} రోజుల్లో {A} మొత్తం ఎన్ని పేజీలు చదువుతారు?",
    }),
    Template("train", "multiplication", 1, _nums_mul(20, 90, 2, 9, step_a=5), lambda v: v["a"] * v["b"],
             "{a} kilometers every hour for {b} hours is {a} × {b} = {ans} kilometers.", {
        "en": "A train travels {a} kilometers every hour. How many kilometers does it travel in {b} hours?",
        "es": "Un tren recorre {a} kilómetros cada hora. ¿Cuántos kilómetros recorre en {b} horas?",
        "fr": "Un train parcourt {a} kilomètres par heure. Combien de kilomètres parcourt-il en {b} heures ?",
        "de": "Ein Zug fährt {a} Kilometer pro Stunde. Wie viele Kilometer fährt er in {b} Stunden?",
        "ru": "Поезд проезжает {a:km} в час. Сколько километров он проедет за {b:hour}?",
        "bn": "একটি ট্রেন প্রতি ঘণ্টায় {a} কিলোমিটার যায়। {b} ঘণ্টায় ট্রেনটি কত কিলোমিটার যাবে?",
        "th": "รถไฟวิ่งได้ชั่วโมงละ {a} กิโลเมตร ใน {b} ชั่วโมงรถไฟจะวิ่งได้กี่กิโลเมตร",
        "sw": "Treni husafiri kilomita {a} kila saa. Itasafiri kilomita ngapi kwa saa {b}?",
        "zh": "一列火车每小时行驶{a}公里。{b}小时它能行驶多少公里？",
        "ja": "電車が1時間に{a}キロメートル進みます。{b}時間では何キロメートル進みますか？",
        "te": "ఒక రైలు గంటకు {a} కిలోమీటర్లు ప్రయాణిస్తుంది. {b} గంటల్లో అది ఎన్ని కిలోమీటర్లు ప్రయాణిస్తుంది?",
    }),
    Template("groups", "division", 1, _nums_div(9), lambda v: v["a"],
             "{t} students in groups of {b} make {t} ÷ {b} = {ans} groups.", {
        "en": "There are {t} students in a class. The teacher splits them into groups of {b}. "
              "How many groups are there?",
        "es": "En una clase hay {t} estudiantes. La maestra los divide en grupos de {b}. ¿Cuántos grupos hay?",
        "fr": "Une classe compte {t} élèves. L'enseignante les répartit en groupes de {b}. "
              "Combien y a-t-il de groupes ?",
        "de": "In einer Klasse sind {t} Schüler. Die Lehrerin teilt sie in Gruppen zu je {b} ein. "
              "Wie viele Gruppen gibt es?",
        "ru": "В классе {t:student}. Учительница делит их на группы по {b:person}. Сколько получится групп?",
        "bn": "একটি ক্লাসে {t} জন শিক্ষার্থী আছে। শিক্ষক তাদের {b} জন করে দলে ভাগ করলেন। মোট কয়টি দল হলো?",
        "th": "ห้องเรียนหนึ่งมีนักเรียน {t} คน ครูแบ่งนักเรียนออกเป็นกลุ่ม กลุ่มละ {b} คน จะได้ทั้งหมดกี่กลุ่ม",
        "sw": "Darasa lina wanafunzi {t}. Mwalimu anawagawa katika vikundi vya wanafunzi {b}. "
              "Kuna vikundi vingapi?",
        "zh": "一个班有{t}名学生。老师把他们每{b}人分成一组。一共能分成多少组？",
        "ja": "クラスに生徒が{t}人います。先生は生徒を{b}人ずつのグループに分けました。グループはいくつできますか？",
        "te": "ఒక తరగతిలో {t} మంది విద్యార్థులు ఉన్నారు. ఉపాధ్యాయులు వారిని {b} మంది చొప్పున బృందాలుగా "
              "విభజించారు. మొత్తం ఎన్ని బృందాలు ఏర్పడ్డాయి?",
    }),
    Template("buy-give", "multi-step", 2, _nums_buy_give, lambda v: v["a"] + v["b"] - v["c"],
             "After buying: {a} + {b} = {s1} {pl}. After giving {c} away: {s1} - {c} = {ans} {pl}.", {
        "en": "{A} has {a:o}. {A} buys {b} more and then gives {c} to {B}. How many {pl:o} does {A} have now?",
        "es": "{A} tiene {a:o}. Compra {b} más y luego le da {c} a {B}. ¿{Q:o} tiene {A} ahora?",
        "fr": "{A} a {a:o}. [Il|Elle] en achète {b} de plus, puis en donne {c} à {B}. "
              "{Q:o} {A} a-t-[il|elle] maintenant ?",
        "de": "{A} hat {a:o}. [Er|Sie] kauft {b} dazu und gibt dann {c} an {B} ab. {Q:o} hat {A} jetzt?",
        "ru": "У {A.gen} есть {a:o}. [Он|Она] [купил|купила] ещё {b}, а потом [отдал|отдала] {c} {B.dat}. "
              "{Q:o} теперь у {A.gen}?",
        "bn": "{A.gen} কাছে {a:o} আছে। সে আরও {b:o} কিনল, তারপর {B.dat} {c:o} দিল। এখন {A.gen} কাছে {q:o} আছে?",
        "th": "{A}มี{a:o} {A}ซื้อมาเพิ่มอีก {b} {cl:o} แล้วให้{B}ไป {c} {cl:o} ตอนนี้{A}มี{q:o}",
        "sw": "{A} ana {a:o}. Ananunua {b:o} zaidi, kisha anampa {B} {c:o}. {A} ana {q:o} sasa?",
        "zh": "{A}有{a:o}，又买了{b}{cl:o}，然后给了{B}{c}{cl:o}。{A}现在有{q:o}？",
        "ja": "{A}は{pl:o}を{a}{cl:o}持っています。さらに{b}{cl:o}買い、そのあと{B}に{c}{cl:o}あげました。"
              "{A}は今、{pl:o}を何{cl:o}持っていますか？",
        "te": "{A} దగ్గర {a:o} ఉన్నాయి. {A} మరో {b:o} కొని, తర్వాత {B.dat} {c:o} ఇచ్చారు. "
              "ఇప్పుడు {A} దగ్గర {q:o} ఉన్నాయి?",
    }),
    Template("bags", "multi-step", 2, _nums_bags, lambda v: v["c"] + v["a"] * v["b"],
             "The bags hold {a} × {b} = {s1} {pl}. Adding the {c} already there: {s1} + {c} = {ans} {pl}.", {
        "en": "{A} has {c:o}. Then {A} buys {a:bag} of {pl:o} with {b} in each bag. "
              "How many {pl:o} does {A} have now?",
        "es": "{A} tiene {c:o}. Después compra {a:bag} de {pl:o}, con {b} en cada bolsa. ¿{Q:o} tiene {A} ahora?",
        "fr": "{A} a {c:o}. Ensuite, [il|elle] achète {a:bag} {de:o}, avec {b} dans chaque sac. "
              "{Q:o} {A} a-t-[il|elle] maintenant ?",
        "de": "{A} hat {c:o}. Dann kauft [er|sie] {a:bag} {pl:o} mit je {b} Stück. {Q:o} hat {A} jetzt?",
        "ru": "У {A.gen} есть {c:o}. Потом [он|она] [купил|купила] {a:bag.acc} {gp:o}, по {b} в каждом пакете. "
              "{Q:o} теперь у {A.gen}?",
        "bn": "{A.gen} কাছে {c:o} আছে। তারপর সে {a} ব্যাগ {pl:o} কিনল, প্রতিটি ব্যাগে {b}{cl:o} করে। "
              "এখন {A.gen} কাছে {q:o} আছে?",
        "th": "{A}มี{c:o} จากนั้น{A}ซื้อ{pl:o}มาอีก {a} ถุง ถุงละ {b} {cl:o} ตอนนี้{A}มี{q:o}",
        "sw": "{A} ana {c:o}. Kisha ananunua mifuko {a} ya {pl:o}, kila mfuko una {b:o}. {A} ana {q:o} sasa?",
        "zh": "{A}有{c:o}。后来{A}又买了{a}袋{pl:o}，每袋{b}{cl:o}。{A}现在有{q:o}？",
        "ja": "{A}は{pl:o}を{c}{cl:o}持っています。そのあと、{pl:o}が{b}{cl:o}ずつ入った袋を{a}袋買いました。"
              "{A}は今、{pl:o}を何{cl:o}持っていますか？",
        "te": "{A} దగ్గర {c:o} ఉన్నాయి. తర్వాత {A} {a} సంచుల {pl:o} కొన్నారు, ఒక్కో సంచిలో {b:o} ఉన్నాయి. "
              "ఇప్పుడు {A} దగ్గర {q:o} ఉన్నాయి?",
    }),
    Template("more-than", "multi-step", 2, _nums_add, lambda v: 2 * v["a"] + v["b"],
             "The second person has {a} + {b} = {s1} {pl}. Together: {a} + {s1} = {ans} {pl}.", {
        "en": "{A} has {a:o}. {B} has {b} more {pl:o} than {A}. How many {pl:o} do they have together?",
        "es": "{A} tiene {a:o}. {B} tiene {b} {pl:o} más que {A}. ¿{Q:o} tienen en total?",
        "fr": "{A} a {a:o}. {B} a {b} {pl:o} de plus que {A}. {Q:o} ont {A} et {B} en tout ?",
        "de": "{A} hat {a:o}. {B} hat {b} {pl:o} mehr als {A}. {Q:o} haben die beiden zusammen?",
        "ru": "У {A.gen} есть {a:o}. У {B.gen} на {b:o.acc} больше, чем у {A.gen}. {Q:o} у них вместе?",
        "bn": "{A.gen} কাছে {a:o} আছে। {B.gen} কাছে {A.gen} চেয়ে {b:o} বেশি আছে। দুজনের কাছে মোট {q:o} আছে?",
        "th": "{A}มี{a:o} {B}มี{pl:o}มากกว่า{A} {b} {cl:o} ทั้งสองคนมี{pl:o}รวมกันกี่{cl:o}",
        "sw": "{A} ana {a:o}. {B} ana {pl:o} {b} zaidi ya {A}. Wote wawili wana {q:o} kwa pamoja?",
        "zh": "{A}有{a:o}。{B}比{A}多{b}{cl:o}。两人一共有{q:o}？",
        "ja": "{A}は{pl:o}を{a}{cl:o}持っています。{B}は{A}より{b}{cl:o}多く持っています。"
              "2人合わせて何{cl:o}持っていますか？",
        "te": "{A} దగ్గర {a:o} ఉన్నాయి. {B} దగ్గర {A} కంటే {b} {pl:o} ఎక్కువ ఉన్నాయి. "
              "ఇద్దరి దగ్గర కలిపి {q:o} ఉన్నాయి?",
    }),
    Template("times-as-many", "multi-step", 2, _nums_times, lambda v: (v["k"] - 1) * v["a"],
             "The second person has {k} × {a} = {s1} {pl}. The difference is {s1} - {a} = {ans} {pl}.", {
        "en": "{A} has {a:o}. {B} has {k} times as many {pl:o} as {A}. How many more {pl:o} does {B} have than {A}?",
        "es": "{A} tiene {a:o}. {B} tiene {k} veces la cantidad de {pl:o} que tiene {A}. ¿{Q:o} más tiene {B} que {A}?",
        "fr": "{A} a {a:o}. {B} a {k} fois autant {de:o} que {A}. {Q:o} {B} a-t-<il|elle> de plus que {A} ?",
        "de": "{A} hat {a:o}. {B} hat {k}-mal so viele {pl:o} wie {A}. {Q:o} hat {B} mehr als {A}?",
        "ru": "У {A.gen} есть {a:o}. У {B.gen} в {k:times} больше {gp:o}, чем у {A.gen}. "
              "На сколько {gp:o} у {B.gen} больше, чем у {A.gen}?",
        "bn": "{A.gen} কাছে {a:o} আছে। {B.gen} কাছে {A.gen} {k} গুণ {pl:o} আছে। "
              "{B.gen} কাছে {A.gen} চেয়ে {q:o} বেশি আছে?",
        "th": "{A}มี{a:o} {B}มี{pl:o}มากเป็น {k} เท่าของ{A} {B}มี{pl:o}มากกว่า{A}กี่{cl:o}",
        "sw": "{A} ana {a:o}. {B} ana {pl:o} mara {k} ya idadi ya {A}. {B} ana {q:o} zaidi ya {A}?",
        "zh": "{A}有{a:o}。{B}的{pl:o}是{A}的{k}倍。{B}比{A}多{q:o}？",
        "ja": "{A}は{pl:o}を{a}{cl:o}持っています。{B}は{A}の{k}倍の{pl:o}を持っています。"
              "{B}は{A}より何{cl:o}多く持っていますか？",
        "te": "{A} దగ్గర {a:o} ఉన్నాయి. {B} దగ్గర {A} కంటే {k} రెట్లు {pl:o} ఉన్నాయి. "
              "{A} కంటే {B} దగ్గర {q:o} ఎక్కువ ఉన్నాయి?",
    }),
    Template("change", "multi-step", 2, _nums_change, lambda v: v["a"] - v["b"] * v["c"],
             "The notebooks cost {b} × {c} = {s1} dollars. What is left: {a} - {s1} = {ans} dollars.", {
        "en": "{A} has {a} dollars. {A} buys {b} notebooks that cost {c} dollars each. "
              "How many dollars does {A} have left?",
        "es": "{A} tiene {a} dólares. Compra {b} cuadernos que cuestan {c} dólares cada uno. "
              "¿Cuántos dólares le quedan a {A}?",
        "fr": "{A} a {a} dollars. [Il|Elle] achète {b} cahiers à {c} dollars chacun. Combien de dollars reste-t-il à {A} ?",
        "de": "{A} hat {a} Dollar. [Er|Sie] kauft {b} Hefte für je {c} Dollar. Wie viele Dollar hat {A} noch übrig?",
        "ru": "У {A.gen} есть {a:dollar}. [Он|Она] [купил|купила] {b:notebook.acc}, каждая стоит {c:dollar}. "
              "Сколько долларов осталось у {A.gen}?",
        "bn": "{A.gen} কাছে {a} ডলার আছে। সে {b}টি খাতা কিনল, প্রতিটির দাম {c} ডলার। {A.gen} কাছে কত ডলার বাকি থাকল?",
        "th": "{A}มีเงิน {a} ดอลลาร์ {A}ซื้อสมุด {b} เล่ม เล่มละ {c} ดอลลาร์ {A}จะเหลือเงินกี่ดอลลาร์",
        "sw": "{A} ana dola {a}. Ananunua madaftari {b} kwa dola {c} kila moja. {A} amebaki na dola ngapi?",
        "zh": "{A}有{a}美元。{A}买了{b}本笔记本，每本{c}美元。{A}还剩多少美元？",
        "ja": "{A}は{a}ドル持っています。1冊{c}ドルのノートを{b}冊買いました。{A}には何ドル残っていますか？",
        "te": "{A} దగ్గర {a} డాలర్లు ఉన్నాయి. {A} ఒక్కొక్కటి {c} డాలర్ల చొప్పున {b} నోట్‌బుక్‌లు కొన్నారు. "
              "{A} దగ్గర ఇంకా ఎన్ని డాలర్లు మిగిలాయి?",
    }),
    Template("buy-share", "multi-step", 2, _nums_buy_share, lambda v: v["e"],
             "In all: {a} + {b} = {s1} {pl}. Shared among {k} friends: {s1} ÷ {k} = {ans} {pl} each.", {
        "en": "{A} has {a:o} and buys {b} more. Then {A} shares all of them equally among {k} friends. "
              "How many {pl:o} does each friend get?",
        "es": "{A} tiene {a:o} y compra {b} más. Después reparte el total a partes iguales entre {k} amigos. "
              "¿{Q:o} recibe cada amigo?",
        "fr": "{A} a {a:o} et en achète {b} de plus. Ensuite, [il|elle] partage le tout équitablement entre {k} amis. "
              "{Q:o} chaque ami reçoit-il ?",
        "de": "{A} hat {a:o} und kauft {b} dazu. Dann verteilt [er|sie] alle gleichmäßig an {k} Freunde. "
              "{Q:o} bekommt jeder Freund?",
        "ru": "У {A.gen} есть {a:o}, и [он|она] [купил|купила] ещё {b}. Потом [он|она] [разделил|разделила] все "
              "поровну между {k} друзьями. {Q:o} получил каждый друг?",
        "bn": "{A.gen} কাছে {a:o} আছে, সে আরও {b:o} কিনল। তারপর সে সবগুলো {k} জন বন্ধুর মধ্যে সমানভাবে ভাগ করে দিল। "
              "প্রত্যেক বন্ধু {q:o} পেল?",
        "th": "{A}มี{a:o} และซื้อมาเพิ่มอีก {b} {cl:o} จากนั้น{A}แบ่งทั้งหมดให้เพื่อน {k} คนเท่า ๆ กัน "
              "เพื่อนแต่ละคนได้{q:o}",
        "sw": "{A} ana {a:o} na ananunua {b:o} zaidi. Kisha anagawa {all:o} kwa usawa kwa marafiki {k}. "
              "Kila rafiki anapata {q:o}?",
        "zh": "{A}有{a:o}，又买了{b}{cl:o}。然后{A}把这些{pl:o}平均分给{k}个朋友。每个朋友分到{q:o}？",
        "ja": "{A}は{pl:o}を{a}{cl:o}持っていて、さらに{b}{cl:o}買いました。それを全部{k}人の友達に同じ数ずつ"
              "分けました。1人あたり何{cl:o}もらえますか？",
        "te": "{A} దగ్గర {a:o} ఉన్నాయి, {A} మరో {b:o} కొన్నారు. తర్వాత అన్నింటినీ {k} మంది స్నేహితులకు సమానంగా "
              "పంచారు. ఒక్కొక్కరికి {q:o} వచ్చాయి?",
    }),
    Template("keep-and-share", "multi-step", 3, _nums_three, lambda v: v["e"],
             "The boxes hold {a} × {b} = {s1} {pl}. After keeping {c}: {s1} - {c} = {s2}. "
             "Shared among {k} friends: {s2} ÷ {k} = {ans} {pl} each.", {
        "en": "{A} buys {a:box} of {pl:o} with {b} in each box. {A} keeps {c} and shares the rest equally "
              "among {k} friends. How many {pl:o} does each friend get?",
        "es": "{A} compra {a:box} de {pl:o}, con {b} en cada caja. Se queda con {c} y reparte el resto a partes "
              "iguales entre {k} amigos. ¿{Q:o} recibe cada amigo?",
        "fr": "{A} achète {a:box} {de:o}, avec {b} dans chaque carton. [Il|Elle] en garde {c} et partage le reste "
              "équitablement entre {k} amis. {Q:o} chaque ami reçoit-il ?",
        "de": "{A} kauft {a:box} {pl:o} mit je {b} Stück. [Er|Sie] behält {c} und verteilt den Rest gleichmäßig "
              "an {k} Freunde. {Q:o} bekommt jeder Freund?",
        "ru": "{A} [купил|купила] {a:box.acc} {gp:o}, по {b} в каждой коробке. Себе [он|она] [оставил|оставила] {c}, "
              "а остальные [разделил|разделила] поровну между {k} друзьями. {Q:o} получил каждый друг?",
        "bn": "{A} {a} বাক্স {pl:o} কিনল, প্রতিটি বাক্সে {b}{cl:o} করে। সে নিজের জন্য {c:o} রাখল এবং বাকিগুলো "
              "{k} জন বন্ধুর মধ্যে সমানভাবে ভাগ করে দিল। প্রত্যেক বন্ধু {q:o} পেল?",
        "th": "{A}ซื้อ{pl:o} {a} กล่อง กล่องละ {b} {cl:o} {A}เก็บไว้เอง {c} {cl:o} แล้วแบ่งที่เหลือให้เพื่อน {k} คน"
              "เท่า ๆ กัน เพื่อนแต่ละคนได้{q:o}",
        "sw": "{A} ananunua {a:box} ya {pl:o}, kila sanduku lina {b:o}. Anajiwekea {c:o} na kugawa kwa usawa "
              "kiasi kilichobaki kwa marafiki {k}. Kila rafiki anapata {q:o}?",
        "zh": "{A}买了{a}盒{pl:o}，每盒{b}{cl:o}。{A}自己留下{c}{cl:o}，把剩下的平均分给{k}个朋友。每个朋友分到{q:o}？",
        "ja": "{A}は{pl:o}が{b}{cl:o}ずつ入った箱を{a}箱買いました。{c}{cl:o}を自分用に取っておき、残りを"
              "{k}人の友達に同じ数ずつ分けました。1人あたり何{cl:o}もらえますか？",
        "te": "{A} {a:box} {pl:o} కొన్నారు, ఒక్కో పెట్టెలో {b:o} ఉన్నాయి. {A} తన కోసం {c} ఉంచుకుని, "
              "మిగిలినవాటిని {k} మంది స్నేహితులకు సమానంగా పంచారు. ఒక్కొక్కరికి {q:o} వచ్చాయి?",
    }),
)

TYPES = tuple(dict.fromkeys(t.type for t in TEMPLATES))


# The last line of a solution in each language; X is the boxed answer.
FINAL_ANSWER = {
    "en": "The answer is X.", "es": "La respuesta es X.", "ru": "Ответ: X.", "de": "Die Antwort lautet X.",
    "fr": "La réponse est X.", "bn": "উত্তর হল X।", "th": "คำตอบคือ X", "sw": "Jibu ni X.", "zh": "答案是 X。",
    "ja": "答えは X です。", "te": "సమాధానం X.",
}
