"""A deterministic generator of realistic e-commerce orders, with named drift scenarios.

The targets come from hidden structure (seller reliability, brand premium, gift-wrap and
warranty add-ons, bulk pricing, multiplicative noise) so that no model recovers them
exactly. Scenarios change the inputs the way the real world does and, for
`promotion_season`, the input-to-target relation itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

REGRESSION_TARGET = "order_total"
CLASSIFICATION_TARGET = "is_returned"

# category -> (sub-categories, median unit price, return propensity, shipping weight)
CATEGORIES: dict[str, tuple[list[str], float, float, float]] = {
    "Electronics": (["Phone", "Laptop", "Headphones", "Camera", "Charger"], 220.0, 0.3, 1.2),
    "Fashion": (["Shoes", "Dress", "Jacket", "Handbag", "T-Shirt"], 55.0, 1.0, 0.6),
    "Home": (["Cookware", "Lamp", "Bedding", "Chair", "Vase"], 70.0, 0.1, 1.8),
    "Beauty": (["Serum", "Lipstick", "Perfume", "Shampoo"], 28.0, -0.3, 0.3),
    "Sports": (["Yoga Mat", "Dumbbell", "Tent", "Bike Helmet"], 65.0, 0.0, 1.5),
    "Books": (["Novel", "Cookbook", "Comic", "Textbook"], 18.0, -0.6, 0.4),
    "Toys": (["Puzzle", "Doll", "Board Game", "Building Set"], 30.0, 0.2, 0.7),
    "Grocery": (["Coffee", "Snacks", "Tea", "Olive Oil"], 12.0, -0.8, 0.9),
}
BRAND_STEMS = ["Nova", "Apex", "Lumen", "Terra", "Vivid", "Orion", "Zenith", "Pulse", "Echo"]
BRAND_SUFFIXES = ["tech", "wear", "home", "co", "labs", "works"]
ADJECTIVES = {  # word -> price effect (log scale): titles carry real signal
    "Premium": 0.45,
    "Deluxe": 0.35,
    "Pro": 0.3,
    "Classic": 0.0,
    "Essential": -0.15,
    "Basic": -0.3,
    "Eco": 0.1,
    "Compact": -0.1,
    "Wireless": 0.15,
    "Vintage": 0.2,
}
COLOURS = ["Black", "White", "Blue", "Red", "Green", "Grey", "Rose", "Navy"]
# country -> state -> (cities, tax rate)
MARKETS: dict[str, dict[str, tuple[list[str], float]]] = {
    "US": {
        "CA": (["Los Angeles", "San Francisco", "San Diego", "Sacramento"], 0.0825),
        "NY": (["New York", "Buffalo", "Albany"], 0.08),
        "TX": (["Houston", "Austin", "Dallas"], 0.0625),
        "WA": (["Seattle", "Spokane"], 0.065),
        "IL": (["Chicago", "Springfield"], 0.0625),
        "FL": (["Miami", "Orlando", "Tampa"], 0.06),
    },
    "CA": {
        "ON": (["Toronto", "Ottawa"], 0.13),
        "BC": (["Vancouver", "Victoria"], 0.12),
        "QC": (["Montreal", "Quebec City"], 0.14975),
    },
}
NEW_MARKETS: dict[str, dict[str, tuple[list[str], float]]] = {
    "MX": {
        "CDMX": (["Mexico City"], 0.16),
        "JAL": (["Guadalajara", "Zapopan"], 0.16),
        "NL": (["Monterrey"], 0.16),
    },
    "BR": {
        "SP": (["Sao Paulo", "Campinas"], 0.18),
        "RJ": (["Rio de Janeiro", "Niteroi"], 0.20),
    },
}
PAYMENT_METHODS = ["card", "paypal", "apple_pay", "bank_transfer", "cash_on_delivery"]
PAYMENT_WEIGHTS = [0.55, 0.2, 0.15, 0.06, 0.04]
NEW_MARKET_PAYMENT_WEIGHTS = [0.3, 0.1, 0.05, 0.25, 0.3]
N_SELLERS = 4_000
NEW_MARKET_SELLER_OFFSET = 50_000
START = pd.Timestamp("2025-01-01")
DAYS = 365
MISSING_RATES = {"customer_tenure_days": 0.02, "brand": 0.01, "shipping_cost": 0.005}


@dataclass
class OrderDraft:
    """Columns being built; scenarios edit it before the targets are computed."""

    rng: np.random.Generator
    n: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    base_price: np.ndarray | None = None
    seller_quality: np.ndarray | None = None
    markets: dict[str, dict[str, tuple[list[str], float]]] = field(
        default_factory=lambda: MARKETS
    )
    new_market_share: float = 0.0
    price_level: float = 1.0
    bundle_deal: float = 0.0  # concept drift: extra per-unit discount not in any column
    discount_return_slope: float = 3.0


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    moves: tuple[str, ...]
    apply: Callable[[OrderDraft, float], None]


def _price_inflation(draft: OrderDraft, strength: float) -> None:
    draft.price_level = 1.0 + 0.6 * strength


def _new_market(draft: OrderDraft, strength: float) -> None:
    draft.new_market_share = min(1.0, 0.7 * strength)


def _promotion_season(draft: OrderDraft, strength: float) -> None:
    draft.columns["discount"] = np.clip(
        draft.columns["discount"] + strength * draft.rng.uniform(0.15, 0.35, draft.n), 0.0, 0.8
    )
    draft.columns["quantity"] = draft.columns["quantity"] + draft.rng.poisson(
        1.5 * strength, draft.n
    )
    draft.bundle_deal = min(0.6, 0.3 * strength)
    draft.discount_return_slope = 3.0 + 4.0 * strength


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "price_inflation",
            "Prices, and with them tax, shipping and totals, rise across the catalogue.",
            ("unit_price", "tax", "shipping_cost", REGRESSION_TARGET),
            _price_inflation,
        ),
        Scenario(
            "new_market",
            "Orders arrive from new countries, with new cities, sellers and payment habits.",
            ("country", "state", "city", "seller_id", "payment_method"),
            _new_market,
        ),
        Scenario(
            "promotion_season",
            "Deeper discounts, larger baskets and bundle deals that change what a basket costs.",
            ("discount", "quantity", REGRESSION_TARGET, CLASSIFICATION_TARGET),
            _promotion_season,
        ),
    ]
}


def _brands(category: str) -> list[str]:
    offset = sum(map(ord, category))
    return [
        BRAND_STEMS[(offset + i) % len(BRAND_STEMS)]
        + BRAND_SUFFIXES[(offset // 3 + i) % len(BRAND_SUFFIXES)]
        for i in range(6)
    ]


def _sample_products(draft: OrderDraft) -> None:
    rng, n = draft.rng, draft.n
    names = list(CATEGORIES)
    cat_idx = rng.choice(len(names), n, p=[0.18, 0.2, 0.14, 0.1, 0.1, 0.1, 0.1, 0.08])
    categories = np.array(names)[cat_idx]
    sub = np.empty(n, dtype=object)
    brand = np.empty(n, dtype=object)
    brand_premium = np.zeros(n)
    median = np.zeros(n)
    for i, name in enumerate(names):
        mask = cat_idx == i
        subs, med, _, _ = CATEGORIES[name]
        sub[mask] = rng.choice(subs, mask.sum())
        brand_ids = rng.integers(0, 6, mask.sum())
        brand[mask] = np.array(_brands(name))[brand_ids]
        brand_premium[mask] = (brand_ids - 2.5) * 0.08
        median[mask] = med
    adjectives = np.array(list(ADJECTIVES))
    adj = adjectives[rng.integers(0, len(adjectives), n)]
    adj_effect = np.vectorize(ADJECTIVES.get)(adj)
    colour = np.array(COLOURS)[rng.integers(0, len(COLOURS), n)]
    model_no = rng.integers(100, 999, n).astype(str)
    titles = [f"{b} {a} {c} {s} {m}" for b, a, c, s, m in zip(brand, adj, colour, sub, model_no)]
    draft.columns.update(
        category=categories, sub_category=sub, brand=brand, product_title=np.array(titles)
    )
    draft.base_price = median * np.exp(brand_premium + adj_effect + rng.normal(0, 0.45, n))


def _sample_basket(draft: OrderDraft) -> None:
    rng, n = draft.rng, draft.n
    cheap = draft.base_price < 40
    draft.columns["quantity"] = 1 + rng.poisson(np.where(cheap, 1.4, 0.35))
    discounted = rng.random(n) < 0.4
    draft.columns["discount"] = np.where(discounted, rng.beta(2, 8, n) * 0.6, 0.0)
    ts = START + pd.to_timedelta(rng.integers(0, DAYS * 24 * 3600, n), unit="s")
    draft.columns["order_ts"] = ts.values
    draft.columns["customer_tenure_days"] = rng.exponential(420, n).round()
    draft.columns["payment_method"] = rng.choice(PAYMENT_METHODS, n, p=PAYMENT_WEIGHTS)


def _sample_location_and_seller(draft: OrderDraft) -> np.ndarray:
    rng, n = draft.rng, draft.n
    in_new = rng.random(n) < draft.new_market_share
    country = np.empty(n, dtype=object)
    state = np.empty(n, dtype=object)
    city = np.empty(n, dtype=object)
    tax_rate = np.zeros(n)
    for mask, markets in ((~in_new, draft.markets), (in_new, NEW_MARKETS)):
        rows = np.flatnonzero(mask)
        options = [(c, s, cities, r) for c, st in markets.items() for s, (cities, r) in st.items()]
        picks = rng.integers(0, len(options), rows.size)
        for k, (c, s, cities, r) in enumerate(options):
            sel = rows[picks == k]
            country[sel], state[sel], tax_rate[sel] = c, s, r
            city[sel] = rng.choice(cities, sel.size)
    # Zipf-like popularity: a few big sellers and a long tail of thousands of small ones.
    ranks = (rng.zipf(1.3, n) - 1) % N_SELLERS
    seller_num = np.where(in_new, NEW_MARKET_SELLER_OFFSET + ranks % 600, ranks)
    seller_quality = np.sin(seller_num * 12.9898) * 0.9  # hidden, stable per seller
    payment = draft.columns["payment_method"]
    payment[in_new] = rng.choice(PAYMENT_METHODS, in_new.sum(), p=NEW_MARKET_PAYMENT_WEIGHTS)
    draft.columns.update(
        country=country,
        state=state,
        city=city,
        seller_id=np.array([f"S{num:06d}" for num in seller_num]),
    )
    draft.seller_quality = seller_quality
    return tax_rate


def _compute_money_and_targets(draft: OrderDraft, tax_rate: np.ndarray) -> None:
    rng, n, cols = draft.rng, draft.n, draft.columns
    unit_price = np.round(draft.base_price * draft.price_level, 2)
    qty, discount = cols["quantity"], cols["discount"]
    category = cols["category"]
    subtotal = unit_price * qty * (1 - discount)
    bulk = np.where(qty >= 5, 0.92, 1.0)  # hidden bulk pricing
    if draft.bundle_deal:  # every unit after the first gets an unrecorded bundle discount
        subtotal = subtotal * (1 - draft.bundle_deal * (qty - 1) / qty)
    subtotal = subtotal * bulk
    exempt = category == "Grocery"
    tax = np.round(np.where(exempt, 0.0, subtotal * tax_rate), 2)
    weight = np.array([CATEGORIES[c][3] for c in category]) * qty
    far = np.isin(cols["country"], list(NEW_MARKETS))
    free_shipping = (subtotal > 75) & (rng.random(n) < 0.7)
    shipping = np.where(free_shipping, 0.0, 4.99 + 2.1 * weight + np.where(far, 9.0, 0.0))
    shipping = shipping * draft.price_level**0.5
    addons = (category == "Electronics") * (rng.random(n) < 0.25) * 0.12 * subtotal
    gift_wrap = (rng.random(n) < 0.08) * 6.5
    noise = np.exp(rng.normal(0, 0.07, n))
    total = (subtotal + tax + shipping + addons + gift_wrap) * noise

    returns_logit = (
        -1.2
        + 1.6 * np.array([CATEGORIES[c][2] for c in category])
        + draft.discount_return_slope * discount
        + 1.4 * (cols["payment_method"] == "cash_on_delivery")
        - 0.0018 * np.nan_to_num(cols["customer_tenure_days"], nan=400.0)
        + 0.4 * np.log1p(unit_price / 50)
        - 2.0 * draft.seller_quality
    )
    returned = rng.random(n) < 1 / (1 + np.exp(-returns_logit))
    cols.update(
        unit_price=unit_price,
        tax=tax,
        shipping_cost=np.round(shipping, 2),
        **{REGRESSION_TARGET: np.round(total, 2), CLASSIFICATION_TARGET: returned.astype(int)},
    )


def _inject_missing(draft: OrderDraft) -> None:
    for column, rate in MISSING_RATES.items():
        values = draft.columns[column].astype(object if column == "brand" else float)
        values[draft.rng.random(draft.n) < rate] = None if column == "brand" else np.nan
        draft.columns[column] = values


COLUMN_ORDER = [
    "order_id",
    "order_ts",
    "category",
    "sub_category",
    "brand",
    "seller_id",
    "product_title",
    "unit_price",
    "quantity",
    "discount",
    "tax",
    "shipping_cost",
    "payment_method",
    "city",
    "state",
    "country",
    "customer_tenure_days",
    REGRESSION_TARGET,
    CLASSIFICATION_TARGET,
]


def generate_orders(
    n_rows: int = 50_000,
    seed: int = 42,
    scenario: str | None = None,
    strength: float = 1.0,
) -> pd.DataFrame:
    """Generate `n_rows` orders; the same arguments always give the same frame."""
    if scenario is not None and scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {sorted(SCENARIOS)}")
    draft = OrderDraft(rng=np.random.default_rng(seed), n=n_rows)
    _sample_products(draft)
    _sample_basket(draft)
    if scenario is not None:
        SCENARIOS[scenario].apply(draft, strength)
    tax_rate = _sample_location_and_seller(draft)
    _compute_money_and_targets(draft, tax_rate)
    _inject_missing(draft)
    prefix = "O" if scenario is None else f"O{scenario[:2].upper()}"
    draft.columns["order_id"] = np.array([f"{prefix}{seed:04d}{i:07d}" for i in range(n_rows)])
    frame = pd.DataFrame({name: draft.columns[name] for name in COLUMN_ORDER})
    frame["order_ts"] = pd.to_datetime(frame["order_ts"])
    return frame
