//! Enums whose values are words in the API and in storage (`"string"`, `"not_exists"`): the
//! list of values, the spelling and its parser come from one table, so a value cannot be added
//! to one and forgotten in another.

/// Declares the enum with `ALL`, `as_str`, `parse` and `Display`:
///
/// ```
/// meisa_model::spelled! {
///     /// A season.
///     pub enum Season { Spring = "spring", Autumn = "autumn" }
/// }
/// assert_eq!(Season::parse("autumn"), Some(Season::Autumn));
/// assert_eq!(Season::ALL.len(), 2);
/// assert_eq!(Season::Spring.to_string(), "spring");
/// ```
#[macro_export]
macro_rules! spelled {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == s)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A `String` newtype that a parser made: it shows as, and borrows as, its text.
#[macro_export]
macro_rules! text_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
