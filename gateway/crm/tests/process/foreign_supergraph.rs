//! The gateway is a general federation v2 gateway, not one for our schema only. This test
//! writes three subgraphs that have nothing to do with the CRM (a small library: books,
//! films and a discovery service), composes them with `crm compose`, serves the result
//! with `crm gateway` (the same binary users run) and checks every answer field by field.
//!
//! It covers what our own schema does not use: an entity with a compound key
//! (`Warehouse @key(fields: "region code")`) and one with two keys (`Book` by `id` and by
//! `isbn`), `@requires` and `@provides`, `@shareable` fields answered by either subgraph,
//! an interface and a union whose members live in different subgraphs, `@inaccessible`,
//! nullable entities that fail to resolve, and `__typename` at every level.

use crate::support::plain;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_graphql::{EmptyMutation, EmptySubscription, ObjectType, Schema};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use crm_service_common::internal_auth::{KeyPair, TokenVerifier};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

/// The books subgraph: owns `Book` (two keys) and `Author`, and points at warehouses.
mod books {
    use async_graphql::{ComplexObject, ID, Object, Result, SimpleObject};

    /// id, isbn, title, pages, weight in grams, warehouse region and code, author.
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        i32,
        i32,
        &'static str,
        i32,
        &'static str,
    );

    pub const BOOKS: &[Row] = &[
        ("b1", "978-1", "The Sea Road", 320, 410, "eu", 2, "a1"),
        ("b2", "978-2", "Salt and Stone", 210, 280, "us", 7, "a2"),
        ("b-damaged", "978-9", "A Torn Copy", 90, 120, "eu", 2, "a1"),
    ];

    #[derive(SimpleObject, Clone)]
    #[graphql(complex)]
    pub struct Book {
        pub id: ID,
        pub isbn: String,
        #[graphql(shareable)]
        pub title: String,
        #[graphql(skip)]
        pages: i32,
        pub weight_grams: i32,
        /// Never visible through the gateway.
        #[graphql(inaccessible)]
        pub internal_code: String,
        #[graphql(skip)]
        region: String,
        #[graphql(skip)]
        code: i32,
        #[graphql(skip)]
        author: String,
    }

    #[ComplexObject]
    impl Book {
        /// A damaged record loads, but its page count cannot be read: the book becomes
        /// null where it is nullable (one entity of a batch; the others are whole).
        async fn pages(&self) -> Result<i32> {
            if self.id.as_str() == "b-damaged" {
                return Err("the record of this book is damaged".into());
            }
            Ok(self.pages)
        }

        /// Only the key: the films subgraph owns warehouses.
        async fn stored_in(&self) -> Warehouse {
            Warehouse {
                region: self.region.clone(),
                code: self.code,
            }
        }

        async fn author(&self) -> Option<Author> {
            author(&self.author)
        }
    }

    #[derive(SimpleObject)]
    #[graphql(unresolvable = "region code")]
    pub struct Warehouse {
        pub region: String,
        pub code: i32,
    }

    #[derive(SimpleObject)]
    pub struct Author {
        pub id: ID,
        #[graphql(shareable)]
        pub name: String,
        pub born: i32,
    }

    fn author(id: &str) -> Option<Author> {
        [("a1", "Ada Brook", 1961), ("a2", "Ben Marsh", 1977)]
            .iter()
            .find(|(a, _, _)| *a == id)
            .map(|(id, name, born)| Author {
                id: ID::from(*id),
                name: (*name).into(),
                born: *born,
            })
    }

    fn book(row: &Row) -> Book {
        let (id, isbn, title, pages, weight, region, code, author) = *row;
        Book {
            id: ID::from(id),
            isbn: isbn.into(),
            title: title.into(),
            pages,
            weight_grams: weight,
            internal_code: format!("SHELF-{id}"),
            region: region.into(),
            code,
            author: author.into(),
        }
    }

    fn lookup(found: Option<&Row>) -> Option<Book> {
        found.map(book)
    }

    #[derive(Default)]
    pub struct Query;

    #[Object]
    impl Query {
        async fn books(&self) -> Vec<Book> {
            BOOKS
                .iter()
                .filter(|b| b.0 != "b-damaged")
                .map(book)
                .collect()
        }

        async fn book(&self, id: ID) -> Option<Book> {
            lookup(BOOKS.iter().find(|b| b.0 == id.as_str()))
        }

        #[graphql(entity)]
        async fn find_book_by_id(&self, id: ID) -> Option<Book> {
            lookup(BOOKS.iter().find(|b| b.0 == id.as_str()))
        }

        #[graphql(entity)]
        async fn find_book_by_isbn(&self, isbn: String) -> Option<Book> {
            lookup(BOOKS.iter().find(|b| b.1 == isbn))
        }

        #[graphql(entity)]
        async fn find_author_by_id(&self, id: ID) -> Option<Author> {
            author(&id)
        }
    }
}

/// The films subgraph: owns `Film` and `Warehouse` (compound key), and prices shipping of
/// books from their weight (`@requires`).
mod films {
    use async_graphql::{ComplexObject, ID, Object, SimpleObject};

    #[derive(SimpleObject, Clone)]
    pub struct Film {
        pub id: ID,
        #[graphql(shareable)]
        pub title: String,
        pub minutes: i32,
    }

    #[derive(SimpleObject)]
    pub struct Warehouse {
        pub region: String,
        pub code: i32,
        pub city: String,
    }

    #[derive(SimpleObject)]
    #[graphql(complex)]
    pub struct Book {
        pub id: ID,
        #[graphql(external)]
        pub weight_grams: i32,
    }

    #[ComplexObject]
    impl Book {
        /// 3.00 plus 2 cents a gram: computable only with the weight the books subgraph has.
        #[graphql(requires = "weightGrams")]
        async fn shipping_cents(&self) -> i32 {
            300 + 2 * self.weight_grams
        }
    }

    pub fn films() -> Vec<Film> {
        [("f1", "Northern Lights", 104), ("f2", "The Sea Road", 131)]
            .iter()
            .map(|(id, title, minutes)| Film {
                id: ID::from(*id),
                title: (*title).into(),
                minutes: *minutes,
            })
            .collect()
    }

    fn warehouse(region: &str, code: i32) -> Option<Warehouse> {
        [
            ("eu", 2, "Rotterdam"),
            ("us", 7, "Memphis"),
            ("us", 2, "Reno"),
        ]
        .iter()
        .find(|(r, c, _)| *r == region && *c == code)
        .map(|(region, code, city)| Warehouse {
            region: (*region).into(),
            code: *code,
            city: (*city).into(),
        })
    }

    #[derive(Default)]
    pub struct Query;

    #[Object]
    impl Query {
        async fn films(&self) -> Vec<Film> {
            films()
        }

        async fn warehouse(&self, region: String, code: i32) -> Option<Warehouse> {
            warehouse(&region, code)
        }

        #[graphql(entity)]
        async fn find_film_by_id(&self, id: ID) -> Option<Film> {
            films().into_iter().find(|f| f.id == id)
        }

        #[graphql(entity)]
        async fn find_warehouse(
            &self,
            #[graphql(key)] region: String,
            #[graphql(key)] code: i32,
        ) -> Option<Warehouse> {
            warehouse(&region, code)
        }

        /// `weightGrams` is not a key: it arrives because of `@requires`, and a missing
        /// one is an error.
        #[graphql(entity)]
        async fn find_book_by_id(&self, #[graphql(key)] id: ID, weight_grams: i32) -> Book {
            Book { id, weight_grams }
        }
    }
}

/// The discovery subgraph: reviews, a featured list (an interface) and search (a union)
/// over books and films, which it knows by key and title only.
mod discovery {
    use async_graphql::{ComplexObject, ID, Interface, Object, SimpleObject, Union};

    #[derive(SimpleObject, Clone)]
    #[graphql(complex)]
    pub struct Book {
        pub isbn: String,
        /// The same title the books subgraph has: either may answer it.
        #[graphql(shareable)]
        pub title: String,
    }

    #[ComplexObject]
    impl Book {
        async fn reviews(&self) -> Vec<Review> {
            reviews()
                .into_iter()
                .filter(|r| r.book.as_ref().is_some_and(|b| b.isbn == self.isbn))
                .collect()
        }
    }

    #[derive(SimpleObject, Clone)]
    pub struct Film {
        pub id: ID,
        #[graphql(shareable)]
        pub title: String,
    }

    #[derive(SimpleObject, Clone)]
    #[graphql(unresolvable = "id")]
    pub struct Author {
        pub id: ID,
        #[graphql(external)]
        pub name: String,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Review {
        pub id: ID,
        pub stars: i32,
        pub book: Option<Book>,
        /// The reviewer's name travels with the review: no trip to the books subgraph.
        #[graphql(provides = "name")]
        pub reviewer: Author,
    }

    #[derive(Interface, Clone)]
    #[graphql(field(name = "title", ty = "&String"))]
    pub enum Item {
        Book(Book),
        Film(Film),
    }

    #[derive(Union, Clone)]
    pub enum Hit {
        Book(Book),
        Film(Film),
    }

    fn book(isbn: &str, title: &str) -> Book {
        Book {
            isbn: isbn.into(),
            title: title.into(),
        }
    }

    fn film(id: &str, title: &str) -> Film {
        Film {
            id: ID::from(id),
            title: title.into(),
        }
    }

    pub fn reviews() -> Vec<Review> {
        let reviewer = |id: &str, name: &str| Author {
            id: ID::from(id),
            name: name.into(),
        };
        vec![
            Review {
                id: "r1".into(),
                stars: 5,
                book: Some(book("978-1", "The Sea Road")),
                reviewer: reviewer("a2", "Ben Marsh"),
            },
            // A book the books subgraph has never heard of.
            Review {
                id: "r2".into(),
                stars: 2,
                book: Some(book("978-0", "A Lost Title")),
                reviewer: reviewer("a1", "Ada Brook"),
            },
            // A book whose record fails to load.
            Review {
                id: "r3".into(),
                stars: 4,
                book: Some(book("978-9", "A Torn Copy")),
                reviewer: reviewer("a1", "Ada Brook"),
            },
        ]
    }

    #[derive(Default)]
    pub struct Query;

    #[Object]
    impl Query {
        async fn reviews(&self) -> Vec<Review> {
            reviews()
        }

        async fn featured(&self) -> Vec<Item> {
            vec![
                Item::Film(film("f1", "Northern Lights")),
                Item::Book(book("978-2", "Salt and Stone")),
            ]
        }

        /// Titles containing the text (case-insensitive), books first.
        async fn search(&self, text: String) -> Vec<Hit> {
            let text = text.to_lowercase();
            let books = [("978-1", "The Sea Road"), ("978-2", "Salt and Stone")]
                .into_iter()
                .filter(|(_, t)| t.to_lowercase().contains(&text))
                .map(|(isbn, title)| Hit::Book(book(isbn, title)));
            let films = [("f1", "Northern Lights"), ("f2", "The Sea Road")]
                .into_iter()
                .filter(|(_, t)| t.to_lowercase().contains(&text))
                .map(|(id, title)| Hit::Film(film(id, title)));
            books.chain(films).collect()
        }

        #[graphql(entity)]
        async fn find_book_by_isbn(&self, isbn: String) -> Option<Book> {
            [("978-1", "The Sea Road"), ("978-2", "Salt and Stone")]
                .into_iter()
                .find(|(i, _)| *i == isbn)
                .map(|(isbn, title)| book(isbn, title))
        }

        #[graphql(entity)]
        async fn find_film_by_id(&self, id: ID) -> Option<Film> {
            [("f1", "Northern Lights"), ("f2", "The Sea Road")]
                .into_iter()
                .find(|(i, _)| *i == id.as_str())
                .map(|(id, title)| film(id, title))
        }
    }
}

/// One running test subgraph: its URL and how many requests it answered.
struct Subgraph {
    name: &'static str,
    url: String,
    sdl: String,
    calls: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

struct SubgraphState<Q: ObjectType + 'static> {
    schema: Schema<Q, EmptyMutation, EmptySubscription>,
    verifier: TokenVerifier,
    calls: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

/// Answers only requests carrying a token the gateway signed for this subgraph.
async fn answer<Q: ObjectType + 'static>(
    State(state): State<Arc<SubgraphState<Q>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token.is_none_or(|t| state.verifier.verify(t).is_err()) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    state.calls.fetch_add(1, Ordering::SeqCst);
    let Ok(request) = serde_json::from_slice::<async_graphql::Request>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    axum::Json(state.schema.execute(request).await).into_response()
}

async fn start_subgraph<Q: ObjectType + Default + 'static>(
    name: &'static str,
    keys: &KeyPair,
) -> Subgraph {
    let schema = Schema::build(Q::default(), EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish();
    let sdl = crm_service_common::graphql::federation_sdl(&schema);
    let calls = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let state = Arc::new(SubgraphState {
        schema,
        verifier: keys.verifier(name),
        calls: calls.clone(),
        refused: refused.clone(),
    });
    let app = axum::Router::new()
        .route("/graphql", axum::routing::post(answer::<Q>))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/graphql",
        listener.local_addr().expect("local address")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Subgraph {
        name,
        url,
        sdl,
        calls,
        refused,
    }
}

/// `crm` with arguments; its standard output, or a panic with its error output.
async fn crm(args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("run crm");
    assert!(
        out.status.success(),
        "crm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

struct Gateway {
    url: String,
    _process: tokio::process::Child,
    client: reqwest::Client,
}

impl Gateway {
    async fn post(&self, query: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json"))
    }
}

/// Composes the three subgraphs from their SDL files with `crm compose` and starts
/// `crm gateway` on the result, with the subgraph URLs overridden.
async fn start_gateway(subgraphs: &[&Subgraph], keys: &KeyPair, dir: &std::path::Path) -> Gateway {
    let mut compose = vec!["compose".to_owned()];
    for subgraph in subgraphs {
        let file = dir.join(format!("{}.graphql", subgraph.name));
        std::fs::write(&file, &subgraph.sdl).expect("write SDL");
        compose.push("--subgraph".into());
        compose.push(format!("{}={}", subgraph.name, file.display()));
    }
    let compose: Vec<&str> = compose.iter().map(String::as_str).collect();
    let supergraph = crm(&compose).await;
    for directive in [
        "@join__type(graph: BOOKS, key: \"id\")",
        "@join__type(graph: BOOKS, key: \"isbn\")",
        "key: \"region code\"",
        "@inaccessible",
        "requires: \"weightGrams\"",
        "provides: \"name\"",
        "@join__unionMember",
        "@join__implements",
    ] {
        assert!(
            supergraph.contains(directive),
            "{directive} in\n{supergraph}"
        );
    }
    let file = dir.join("supergraph.graphql");
    std::fs::write(&file, &supergraph).expect("write supergraph");

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_crm"));
    command
        .args(["gateway", "--supergraph"])
        .arg(&file)
        .args(["--listen", "127.0.0.1:0"])
        // With no directory every caller is anonymous; the operator lets them introspect.
        .args(["--introspection-for", "anonymous"])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .env("CRM_GATEWAY_SIGNING_KEY", keys.private_base64())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for subgraph in subgraphs {
        command
            .arg("--subgraph-url")
            .arg(format!("{}={}", subgraph.name, subgraph.url));
    }
    let mut process = command.spawn().expect("start crm gateway");
    let stdout = process.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read log") {
            let line = plain(&line);
            if line.contains("gateway listening") {
                let start = line.find("url=").expect("a url") + 4;
                let url: String = line[start..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                return url;
            }
        }
        panic!("crm gateway stopped before listening");
    })
    .await
    .expect("crm gateway listens within a minute");
    // Keep reading its log so the pipe never fills.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Gateway {
        url,
        _process: process,
        client: reqwest::Client::new(),
    }
}

fn calls(subgraph: &Subgraph) -> usize {
    subgraph.calls.load(Ordering::SeqCst)
}

/// The three subgraphs and `crm gateway` serving their composition; each test starts its
/// own, so the call counters it reads are its own.
struct Library {
    books: Subgraph,
    films: Subgraph,
    discovery: Subgraph,
    gateway: Gateway,
    _dir: tempfile::TempDir,
}

async fn library() -> Library {
    let keys = KeyPair::generate().expect("keys");
    let books = start_subgraph::<books::Query>("books", &keys).await;
    let films = start_subgraph::<films::Query>("films", &keys).await;
    let discovery = start_subgraph::<discovery::Query>("discovery", &keys).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = start_gateway(&[&books, &films, &discovery], &keys, dir.path()).await;
    Library {
        books,
        films,
        discovery,
        gateway,
        _dir: dir,
    }
}

#[tokio::test]
async fn a_compound_key_and_requires_resolve_across_subgraphs() {
    let library = library().await;
    // Warehouse by region and code, resolved in films from the key books gives; films
    // prices shipping from the weight it gets from books; __typename at every level.
    let (status, body) = library
        .gateway
        .post(
            "{ __typename books { __typename id isbn title pages shippingCents storedIn { __typename region code city } } }",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "data": {
            "__typename": "Query",
            "books": [
                { "__typename": "Book", "id": "b1", "isbn": "978-1", "title": "The Sea Road", "pages": 320,
                  "shippingCents": 300 + 2 * 410,
                  "storedIn": { "__typename": "Warehouse", "region": "eu", "code": 2, "city": "Rotterdam" } },
                { "__typename": "Book", "id": "b2", "isbn": "978-2", "title": "Salt and Stone", "pages": 210,
                  "shippingCents": 300 + 2 * 280,
                  "storedIn": { "__typename": "Warehouse", "region": "us", "code": 7, "city": "Memphis" } },
            ]
        } })
    );
}

#[tokio::test]
async fn a_provided_field_needs_no_entity_fetch() {
    let library = library().await;
    let before = calls(&library.books);
    let (status, body) = library
        .gateway
        .post("{ reviews { __typename id stars reviewer { __typename id name } } }")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "data": { "reviews": [
            { "__typename": "Review", "id": "r1", "stars": 5, "reviewer": { "__typename": "Author", "id": "a2", "name": "Ben Marsh" } },
            { "__typename": "Review", "id": "r2", "stars": 2, "reviewer": { "__typename": "Author", "id": "a1", "name": "Ada Brook" } },
            { "__typename": "Review", "id": "r3", "stars": 4, "reviewer": { "__typename": "Author", "id": "a1", "name": "Ada Brook" } },
        ] } })
    );
    assert_eq!(calls(&library.books), before, "books is not asked");
}

#[tokio::test]
async fn a_field_not_provided_is_fetched_in_one_batch() {
    let library = library().await;
    let before = calls(&library.books);
    let (_, body) = library
        .gateway
        .post("{ reviews { reviewer { name born } } }")
        .await;
    assert_eq!(
        body["data"]["reviews"],
        json!([
            { "reviewer": { "name": "Ben Marsh", "born": 1977 } },
            { "reviewer": { "name": "Ada Brook", "born": 1961 } },
            { "reviewer": { "name": "Ada Brook", "born": 1961 } },
        ]),
        "{body}"
    );
    assert_eq!(
        calls(&library.books) - before,
        1,
        "entity fetches are batched"
    );
}

#[tokio::test]
async fn a_shareable_field_is_answered_by_either_subgraph() {
    let library = library().await;
    let before = calls(&library.books);
    let (_, from_discovery) = library
        .gateway
        .post("{ search(text: \"salt\") { __typename ... on Book { isbn title } } }")
        .await;
    assert_eq!(
        from_discovery,
        json!({ "data": { "search": [{ "__typename": "Book", "isbn": "978-2", "title": "Salt and Stone" }] } })
    );
    assert_eq!(
        calls(&library.books),
        before,
        "discovery answered the shareable title"
    );
    let (_, from_books) = library.gateway.post("{ book(id: \"b2\") { title } }").await;
    assert_eq!(
        from_books,
        json!({ "data": { "book": { "title": "Salt and Stone" } } })
    );
}

#[tokio::test]
async fn a_union_and_an_interface_span_subgraphs_and_a_second_key() {
    let library = library().await;
    // Discovery knows books by ISBN and films by id, so this also resolves Book through
    // its second key.
    let (status, body) = library
        .gateway
        .post(
            "{ featured { __typename title ... on Book { isbn pages } ... on Film { id minutes } }
               search(text: \"sea road\") { __typename ... on Book { id title pages } ... on Film { id title minutes } } }",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "data": {
            "featured": [
                { "__typename": "Film", "title": "Northern Lights", "id": "f1", "minutes": 104 },
                { "__typename": "Book", "title": "Salt and Stone", "isbn": "978-2", "pages": 210 },
            ],
            "search": [
                { "__typename": "Book", "id": "b1", "title": "The Sea Road", "pages": 320 },
                { "__typename": "Film", "id": "f2", "title": "The Sea Road", "minutes": 131 },
            ],
        } })
    );
}

#[tokio::test]
async fn a_plan_the_pinned_planner_cannot_make_is_refused_with_a_code() {
    let library = library().await;
    // A known limit of the pinned planner (hive-router-query-planner 2.10.11): a field
    // with @requires reached through an entity's *other* key (discovery knows the book by
    // ISBN, films needs its id and weight from books) cannot be planned. The gateway says
    // so with a code instead of failing; the same field from a root that has the id plans.
    let (status, body) = library
        .gateway
        .post("{ reviews { book { shippingCents } } }")
        .await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].as_str()),
        (400, Some("QUERY_PLANNING_FAILED")),
        "{body}"
    );
    let (_, body) = library
        .gateway
        .post("{ book(id: \"b1\") { shippingCents reviews { stars } } }")
        .await;
    assert_eq!(
        body,
        json!({ "data": { "book": { "shippingCents": 1120, "reviews": [{ "stars": 5 }] } } })
    );
}

#[tokio::test]
async fn entities_that_fail_to_resolve_come_back_null_and_the_rest_whole() {
    let library = library().await;
    // A book books never heard of comes back null without an error; a book whose record
    // fails comes back null with the books subgraph's error. async-graphql reports an
    // entity's error without the entity's index (`["_entities", "pages"]`), so the gateway
    // drops that unfollowable path and the error points at the list (`affectedPath`).
    let (status, body) = library
        .gateway
        .post("{ reviews { id book { __typename isbn pages } } }")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({ "reviews": [
            { "id": "r1", "book": { "__typename": "Book", "isbn": "978-1", "pages": 320 } },
            { "id": "r2", "book": null },
            { "id": "r3", "book": null },
        ] }),
        "{body}"
    );
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(
        errors[0]["message"], "the record of this book is damaged",
        "{body}"
    );
    assert_eq!(errors[0]["extensions"]["service"], "books", "{body}");
    assert!(errors[0].get("path").is_none(), "{body}");
    assert_eq!(
        errors[0]["extensions"]["affectedPath"], "reviews.@.book",
        "{body}"
    );
}

#[tokio::test]
async fn a_root_field_that_fails_comes_back_null_with_its_path() {
    let library = library().await;
    let (_, body) = library
        .gateway
        .post("{ book(id: \"b-damaged\") { title pages } }")
        .await;
    assert_eq!(body["data"], json!({ "book": null }), "{body}");
    assert_eq!(
        body["errors"][0]["path"],
        json!(["book", "pages"]),
        "{body}"
    );
}

#[tokio::test]
async fn an_inaccessible_field_is_not_queryable_listed_or_suggested() {
    let library = library().await;
    let (status, body) = library.gateway.post("{ books { internalCode } }").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    let (_, body) = library
        .gateway
        .post("{ __type(name: \"Book\") { fields { name } } }")
        .await;
    let fields: Vec<&str> = body["data"]["__type"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(
        fields,
        // Composition orders fields by name; `internalCode` is not among them.
        [
            "author",
            "id",
            "isbn",
            "pages",
            "reviews",
            "shippingCents",
            "storedIn",
            "title",
            "weightGrams"
        ],
        "{body}"
    );
    let (_, body) = library.gateway.post("{ books { internalCod } }").await;
    assert!(
        !body.to_string().contains("internalCode"),
        "an inaccessible field is never suggested: {body}"
    );
}

#[tokio::test]
async fn every_subgraph_call_carries_a_token_signed_for_that_subgraph() {
    let library = library().await;
    let (status, body) = library
        .gateway
        .post("{ books { shippingCents } featured { title } search(text: \"sea road\") { __typename } }")
        .await;
    assert_eq!(status, 200, "{body}");
    for subgraph in [&library.books, &library.films, &library.discovery] {
        assert!(calls(subgraph) > 0, "{} was called", subgraph.name);
        assert_eq!(
            subgraph.refused.load(Ordering::SeqCst),
            0,
            "{}",
            subgraph.name
        );
    }
    let direct = reqwest::Client::new()
        .post(&library.books.url)
        .json(&json!({ "query": "{ books { title } }" }))
        .send()
        .await
        .expect("send");
    assert_eq!(direct.status(), 401, "a call without a token is refused");
}
