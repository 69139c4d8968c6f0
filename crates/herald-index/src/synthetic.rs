//! A synthetic app for benchmarks: 10,000 tags with Zipf popularity, about 20 tags per account,
//! 10 attributes with 2 to 1,000 values, one or two devices per account.
//!
//! One generator serves every benchmark that needs this data (the index alone, the SQLite
//! start-up rebuild, the PostgreSQL comparison), so that their numbers describe the same app: the
//! same seed gives the same accounts, in id order. Behind the `synthetic` feature because only
//! benchmarks need it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{AppIndex, IndexBuilder};

/// Distinct tags of the app; tag `t{rank}` is the rank-`rank + 1` most popular.
pub const TAGS: usize = 10_000;
/// Distinct tags drawn for each account (a few fewer when redraws keep hitting duplicates).
pub const TAGS_PER_ACCOUNT: usize = 20;
/// Zipf exponent of tag and most attribute popularity: the rank-r item is drawn with weight 1/r^s.
const ZIPF_S: f64 = 1.0;
const CITIES: [&str; 6] = ["Shanghai", "Beijing", "Guangzhou", "Shenzhen", "Chengdu", "Hangzhou"];
/// Platforms of the first device, drawn 60 / 35 / 5 %.
const PLATFORMS: [&str; 3] = ["android", "ios", "web"];

/// A discrete distribution sampled by binary search over its cumulative weights.
#[derive(Debug, Clone)]
pub struct Weighted {
    cdf: Vec<f64>,
}

impl Weighted {
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        cdf.iter_mut().for_each(|c| *c /= total);
        Self { cdf }
    }

    /// Ranks `0..n`, rank r drawn with weight 1/(r+1)^s.
    pub fn zipf(n: usize) -> Self {
        Self::new((1..=n).map(|rank| 1.0 / (rank as f64).powf(ZIPF_S)))
    }

    pub fn uniform(n: usize) -> Self {
        Self::new(std::iter::repeat_n(1.0, n))
    }

    pub fn sample(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.gen();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len().saturating_sub(1))
    }
}

/// One attribute slot: its name, its values and how often each is drawn.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: &'static str,
    pub values: Vec<String>,
    distribution: Weighted,
}

/// The app's ten attributes, in slot order: `sex` (2 values, uniform), `tier` (bronze 60 %,
/// silver 25 %, gold 10 %, platinum 5 %), `city` (1,000, Zipf, `Shenzhen` is rank 4), then
/// `age_band` (10), `language` (20), `os_version` (50), `province` (34), `channel` (100),
/// `interest` (200), `model` (500), all Zipf.
pub fn attributes() -> Vec<Attribute> {
    let named = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let zipf = |name: &'static str, n: usize| Attribute {
        name,
        values: named(name, n),
        distribution: Weighted::zipf(n),
    };
    let mut cities: Vec<String> = CITIES.iter().map(|c| c.to_string()).collect();
    cities.extend((CITIES.len()..1000).map(|i| format!("city-{i}")));
    vec![
        Attribute {
            name: "sex",
            values: vec!["f".into(), "m".into()],
            distribution: Weighted::uniform(2),
        },
        Attribute {
            name: "tier",
            values: ["bronze", "silver", "gold", "platinum"].map(String::from).to_vec(),
            distribution: Weighted::new([0.60, 0.25, 0.10, 0.05]),
        },
        Attribute { name: "city", values: cities, distribution: Weighted::zipf(1000) },
        zipf("age_band", 10),
        zipf("language", 20),
        zipf("os_version", 50),
        zipf("province", 34),
        zipf("channel", 100),
        zipf("interest", 200),
        zipf("model", 500),
    ]
}

/// Tag names by rank: `t0`, `t1`, ….
pub fn tag_names() -> Vec<String> {
    (0..TAGS).map(|rank| format!("t{rank}")).collect()
}

/// One generated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: u32,
    /// Ranks of its tags (index into [`tag_names`]), distinct, in the order drawn.
    pub tags: Vec<usize>,
    /// Per attribute slot, the index of its value in [`Attribute::values`].
    pub attributes: Vec<usize>,
    /// `(platform, package)` of each device.
    pub devices: Vec<(&'static str, &'static str)>,
}

/// The accounts `0..count` of the app generated from `seed`, in id order.
pub struct Accounts<'a> {
    rng: StdRng,
    next: u32,
    count: u32,
    tags: Weighted,
    platforms: Weighted,
    attributes: &'a [Attribute],
}

/// Generates `count` accounts with the values of `attributes` (from [`attributes`]).
pub fn accounts(count: u32, seed: u64, attributes: &[Attribute]) -> Accounts<'_> {
    Accounts {
        rng: StdRng::seed_from_u64(seed),
        next: 0,
        count,
        tags: Weighted::zipf(TAGS),
        platforms: Weighted::new([0.60, 0.35, 0.05]),
        attributes,
    }
}

impl Iterator for Accounts<'_> {
    type Item = Account;

    fn next(&mut self) -> Option<Account> {
        if self.next >= self.count {
            return None;
        }
        let id = self.next;
        self.next += 1;
        let rng = &mut self.rng;
        let mut tags = Vec::with_capacity(TAGS_PER_ACCOUNT);
        // Duplicates are redrawn, but only a few times so that the loop always ends.
        for _ in 0..TAGS_PER_ACCOUNT * 3 {
            let tag = self.tags.sample(rng);
            if !tags.contains(&tag) {
                tags.push(tag);
                if tags.len() == TAGS_PER_ACCOUNT {
                    break;
                }
            }
        }
        let attributes = self.attributes.iter().map(|a| a.distribution.sample(rng)).collect();
        let platform = PLATFORMS[self.platforms.sample(rng)];
        let package = if rng.gen_bool(0.15) { "com.example.lite" } else { "com.example.app" };
        let mut devices = vec![(platform, package)];
        if rng.gen_bool(0.10) {
            devices.push(("web", "com.example.app"));
        }
        Some(Account { id, tags, attributes, devices })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.count - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

/// The index of `count` generated accounts, built the way a start-up rebuild builds it (tags by
/// name, accounts in id order): the reference the benchmarks compare other paths with.
pub fn build_index(count: u32, seed: u64, attributes: &[Attribute]) -> AppIndex {
    let tag_names = tag_names();
    let mut builder = IndexBuilder::new();
    let mut names: Vec<&str> = Vec::with_capacity(TAGS_PER_ACCOUNT);
    for account in accounts(count, seed, attributes) {
        let id = account.id;
        builder.account(id);
        names.clear();
        names.extend(account.tags.iter().map(|&tag| tag_names[tag].as_str()));
        builder.tags(id, &names);
        for ((slot, attribute), &value) in (0u8..).zip(attributes).zip(&account.attributes) {
            builder.attribute(id, slot, &attribute.values[value]);
        }
        for (platform, package) in account.devices {
            builder.device(id, platform, package);
        }
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_accounts() {
        let attributes = attributes();
        let a: Vec<Account> = accounts(500, 3, &attributes).collect();
        let b: Vec<Account> = accounts(500, 3, &attributes).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 500);
        assert!(a.iter().enumerate().all(|(i, account)| account.id as usize == i));
        for account in &a {
            let mut tags = account.tags.clone();
            tags.sort_unstable();
            tags.dedup();
            assert_eq!(tags.len(), account.tags.len(), "tags are distinct");
            assert!(account.tags.len() <= TAGS_PER_ACCOUNT && account.tags.len() >= 15);
            assert_eq!(account.attributes.len(), attributes.len());
        }
        let index = build_index(500, 3, &attributes);
        assert_eq!(index.eligible().len(), 500);
        // Rank 0 of a Zipf over 10,000 tags is drawn about 10 % of the time, 20 times per account.
        let popular = index.tag_members("t0").map_or(0, |m| m.len());
        assert!(popular > 350, "{popular}");
    }
}
