//! Four subgraphs with the schema, data shape and resolution paths of The Guild's
//! federation gateway benchmark (github.com/graphql-hive/graphql-gateways-benchmark):
//! `accounts` owns users, `products` owns products, `inventory` adds stock and a shipping
//! estimate that `@requires` the price and weight, and `reviews` adds reviews to both and
//! `@provides` an author's username. Written here from its schema (not its code), so that
//! the gateway benchmark needs nothing from outside this repository. The data is fixed:
//! six users, nine products, eleven reviews whose bodies have the original's lengths (the
//! response size is most of what a gateway handles in this benchmark).

use std::sync::Arc;

use async_graphql::{
    ComplexObject, EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

const USERS: [(&str, &str, &str); 6] = [
    ("1", "Ada Lovelace", "ada"),
    ("2", "Grace Hopper", "grace"),
    ("3", "Edsger Dijkstra", "edsger"),
    ("4", "Barbara Liskov", "barbara"),
    ("5", "Donald Knuth", "donald"),
    ("6", "Frances Allen", "frances"),
];

/// `(upc, name, price, weight, in stock)`.
const PRODUCTS: [(&str, &str, i64, i64, bool); 9] = [
    ("1", "Table", 899, 100, true),
    ("2", "Couch", 1299, 1000, false),
    ("3", "Glass", 15, 20, false),
    ("4", "Chair", 499, 100, false),
    ("5", "TV", 1299, 1000, true),
    ("6", "Lamp", 6999, 300, true),
    ("7", "Grill", 3999, 2000, true),
    ("8", "Fridge", 100000, 6000, false),
    ("9", "Sofa", 9999, 800, true),
];

/// `(review id, product upc, body length)`: the original benchmark's reviews.
const REVIEWS: [(&str, &str, usize); 11] = [
    ("1", "1", 445),
    ("2", "1", 289),
    ("3", "1", 275),
    ("4", "1", 143),
    ("5", "2", 445),
    ("6", "2", 289),
    ("7", "2", 275),
    ("8", "2", 143),
    ("9", "3", 143),
    ("10", "4", 143),
    ("11", "4", 844),
];

/// A review's body: words from a fixed list, cut to the length the review has.
fn review_body(index: usize, length: usize) -> String {
    const WORDS: [&str; 16] = [
        "quality",
        "delivery",
        "sturdy",
        "recommend",
        "price",
        "finish",
        "assembly",
        "colour",
        "value",
        "service",
        "comfortable",
        "returned",
        "again",
        "solid",
        "bought",
        "family",
    ];
    let mut body = String::with_capacity(length + 16);
    let mut i = index * 7;
    while body.len() < length {
        if !body.is_empty() {
            body.push(' ');
        }
        body.push_str(WORDS[i % WORDS.len()]);
        i += 3;
    }
    body.truncate(length);
    body
}

/// Every review, in id order (the data of the `reviews` subgraph).
fn all_reviews() -> Vec<Review> {
    REVIEWS
        .iter()
        .enumerate()
        .map(|(index, (id, upc, length))| Review {
            id: ID((*id).to_owned()),
            body: Some(review_body(index, *length)),
            product: Some(ReviewedProduct {
                upc: (*upc).to_owned(),
            }),
        })
        .collect()
}

// --- accounts -------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
pub struct User {
    id: ID,
    name: Option<String>,
    username: Option<String>,
    birthday: Option<i32>,
}

fn user(index: usize) -> User {
    let (id, name, username) = USERS[index];
    User {
        id: ID(id.to_owned()),
        name: Some(name.to_owned()),
        username: Some(username.to_owned()),
        birthday: Some(1_234_567_890),
    }
}

fn user_by_id(id: &str) -> Option<User> {
    USERS.iter().position(|(i, ..)| *i == id).map(user)
}

pub struct AccountsQuery;

#[Object(name = "Query")]
impl AccountsQuery {
    async fn me(&self) -> Option<User> {
        Some(user(0))
    }

    async fn user(&self, id: ID) -> Option<User> {
        user_by_id(&id)
    }

    async fn users(&self) -> Option<Vec<Option<User>>> {
        Some((0..USERS.len()).map(|i| Some(user(i))).collect())
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        user_by_id(&id)
    }
}

// --- products -------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
pub struct Product {
    upc: String,
    name: Option<String>,
    price: Option<i64>,
    weight: Option<i64>,
}

fn product(index: usize) -> Product {
    let (upc, name, price, weight, _) = PRODUCTS[index];
    Product {
        upc: upc.to_owned(),
        name: Some(name.to_owned()),
        price: Some(price),
        weight: Some(weight),
    }
}

pub struct ProductsQuery;

#[Object(name = "Query")]
impl ProductsQuery {
    async fn top_products(
        &self,
        #[graphql(default = 5)] first: i32,
    ) -> Option<Vec<Option<Product>>> {
        let first = usize::try_from(first).unwrap_or(0);
        Some(
            (0..PRODUCTS.len())
                .take(first)
                .map(|i| Some(product(i)))
                .collect(),
        )
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
        PRODUCTS.iter().position(|(u, ..)| *u == upc).map(product)
    }
}

// --- inventory ------------------------------------------------------------------------

/// A product as the inventory sees it: the price and weight arrive from the products
/// subgraph (`@requires`), the stock is its own.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Product", complex)]
pub struct StockedProduct {
    upc: String,
    #[graphql(external)]
    price: Option<i64>,
    #[graphql(external)]
    weight: Option<i64>,
    in_stock: Option<bool>,
}

#[ComplexObject]
impl StockedProduct {
    /// Free above 1000; half the weight otherwise.
    #[graphql(requires = "price weight")]
    async fn shipping_estimate(&self) -> Option<i64> {
        match (self.price, self.weight) {
            (Some(price), _) if price > 1000 => Some(0),
            (Some(_), Some(weight)) => Some(weight / 2),
            _ => None,
        }
    }
}

pub struct InventoryQuery;

#[Object(name = "Query")]
impl InventoryQuery {
    #[graphql(entity)]
    async fn find_product_by_upc(
        &self,
        #[graphql(key)] upc: String,
        price: Option<i64>,
        weight: Option<i64>,
    ) -> Option<StockedProduct> {
        PRODUCTS
            .iter()
            .find(|(u, ..)| *u == upc)
            .map(|(_, _, _, _, in_stock)| StockedProduct {
                upc,
                price,
                weight,
                in_stock: Some(*in_stock),
            })
    }
}

// --- reviews --------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Review {
    id: ID,
    body: Option<String>,
    product: Option<ReviewedProduct>,
}

#[ComplexObject]
impl Review {
    /// Every review is by the first user; the reviews subgraph knows its username.
    #[graphql(provides = "username")]
    async fn author(&self) -> Option<Author> {
        Some(Author {
            id: ID(USERS[0].0.to_owned()),
            username: Some(USERS[0].2.to_owned()),
        })
    }
}

/// A user as the reviews subgraph sees it.
#[derive(SimpleObject, Clone)]
#[graphql(name = "User", complex)]
pub struct Author {
    id: ID,
    #[graphql(external)]
    username: Option<String>,
}

#[ComplexObject]
impl Author {
    /// A user's reviews: the first two, for every user (the original's shape).
    async fn reviews(&self) -> Option<Vec<Option<Review>>> {
        Some(all_reviews().into_iter().take(2).map(Some).collect())
    }
}

/// A product as the reviews subgraph sees it.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Product", complex)]
pub struct ReviewedProduct {
    upc: String,
}

#[ComplexObject]
impl ReviewedProduct {
    async fn reviews(&self) -> Option<Vec<Option<Review>>> {
        Some(
            all_reviews()
                .into_iter()
                .filter(|r| r.product.as_ref().is_some_and(|p| p.upc == self.upc))
                .map(Some)
                .collect(),
        )
    }
}

pub struct ReviewsQuery;

#[Object(name = "Query")]
impl ReviewsQuery {
    #[graphql(entity)]
    async fn find_review_by_id(&self, id: ID) -> Option<Review> {
        all_reviews().into_iter().find(|r| r.id == id)
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Author {
        Author { id, username: None }
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> ReviewedProduct {
        ReviewedProduct { upc }
    }
}

// --- serving --------------------------------------------------------------------------

type AccountsSchema = Schema<AccountsQuery, EmptyMutation, EmptySubscription>;
type ProductsSchema = Schema<ProductsQuery, EmptyMutation, EmptySubscription>;
type InventorySchema = Schema<InventoryQuery, EmptyMutation, EmptySubscription>;
type ReviewsSchema = Schema<ReviewsQuery, EmptyMutation, EmptySubscription>;

/// The four schemas.
#[derive(Clone)]
pub struct GuildSubgraphs {
    accounts: AccountsSchema,
    products: ProductsSchema,
    inventory: InventorySchema,
    reviews: ReviewsSchema,
}

impl Default for GuildSubgraphs {
    fn default() -> Self {
        Self {
            accounts: Schema::build(AccountsQuery, EmptyMutation, EmptySubscription)
                .enable_federation()
                .finish(),
            products: Schema::build(ProductsQuery, EmptyMutation, EmptySubscription)
                .enable_federation()
                .finish(),
            inventory: Schema::build(InventoryQuery, EmptyMutation, EmptySubscription)
                .enable_federation()
                .finish(),
            reviews: Schema::build(ReviewsQuery, EmptyMutation, EmptySubscription)
                .enable_federation()
                .finish(),
        }
    }
}

impl GuildSubgraphs {
    /// Each subgraph's federation SDL, by name (the name is also its path).
    pub fn sdls(&self) -> Vec<(&'static str, String)> {
        let options = async_graphql::SDLExportOptions::new().federation();
        vec![
            ("accounts", self.accounts.sdl_with_options(options)),
            ("inventory", self.inventory.sdl_with_options(options)),
            ("products", self.products.sdl_with_options(options)),
            ("reviews", self.reviews.sdl_with_options(options)),
        ]
    }

    /// `POST /{name}` per subgraph, and `GET /health`.
    pub fn router(self) -> Router {
        let this = Arc::new(self);
        Router::new()
            .route("/accounts", post(accounts))
            .route("/inventory", post(inventory))
            .route("/products", post(products))
            .route("/reviews", post(reviews))
            .route("/health", get(|| async { "ok" }))
            .with_state(this)
    }
}

async fn answer<Q, M, S>(schema: &Schema<Q, M, S>, body: &[u8]) -> Response
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    match serde_json::from_slice::<async_graphql::Request>(body) {
        Ok(request) => axum::Json(schema.execute(request).await).into_response(),
        Err(e) => (
            axum::http::StatusCode::BAD_REQUEST,
            format!("not a GraphQL request: {e}"),
        )
            .into_response(),
    }
}

async fn accounts(State(s): State<Arc<GuildSubgraphs>>, body: Bytes) -> Response {
    answer(&s.accounts, &body).await
}

async fn inventory(State(s): State<Arc<GuildSubgraphs>>, body: Bytes) -> Response {
    answer(&s.inventory, &body).await
}

async fn products(State(s): State<Arc<GuildSubgraphs>>, body: Bytes) -> Response {
    answer(&s.products, &body).await
}

async fn reviews(State(s): State<Arc<GuildSubgraphs>>, body: Bytes) -> Response {
    answer(&s.reviews, &body).await
}

/// The benchmark's operation: every user's reviews' products' reviews' authors' reviews'
/// products, and the same from the top products (its depth and fan-out are the point).
pub const QUERY: &str = r#"fragment User on User { id username name }
fragment Review on Review { id body }
fragment Product on Product { inStock name price shippingEstimate upc weight }
query TestQuery {
  users {
    ...User
    reviews {
      ...Review
      product {
        ...Product
        reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } }
      }
    }
  }
  topProducts {
    ...Product
    reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } }
  }
}"#;
