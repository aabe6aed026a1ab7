//! [`breaking_changes`]: what in a new version of a schema breaks clients of the old one.
//!
//! Clients find a method by its position and read every value by its shape: bincode carries no
//! names and no lengths for structs. So a method that moves, an argument or field that is added,
//! removed, renamed or retyped, or a variant that moves, breaks every client built against the
//! old schema, silently: it sends or reads the wrong bytes. (Names do not travel, but JSON
//! clients and the CLI use them, so a rename breaks those.) Only methods added at the end are
//! safe: old clients never call them.

use std::collections::BTreeSet;

use super::{Field, ServiceSchema, Shape, Type, TypeDef};

/// Every change from `old` to `new` that breaks a client built against `old`, one line each,
/// naming the method and the place in its types. Empty when `new` only adds methods at the end.
///
/// ```
/// use rpc_core::schema::{MethodSchema, ServiceSchema, Type, breaking_changes};
///
/// let method = |name: &str| MethodSchema {
///     name: name.into(),
///     args: vec![],
///     result: Type::Unit,
///     streaming: false,
///     doc: String::new(),
/// };
/// let old = ServiceSchema { name: "s".into(), methods: vec![method("a"), method("b")], types: Default::default() };
/// let mut new = old.clone();
/// new.methods.swap(0, 1);
/// assert_eq!(breaking_changes(&old, &new).len(), 2);
/// new.methods.swap(0, 1);
/// new.methods.push(method("c"));
/// assert!(breaking_changes(&old, &new).is_empty());
/// ```
pub fn breaking_changes(old: &ServiceSchema, new: &ServiceSchema) -> Vec<String> {
    let mut changes = Vec::new();
    if old.name != new.name {
        changes.push(format!(
            "the service was `{}`, is now `{}`",
            old.name, new.name
        ));
    }
    for (index, was) in old.methods.iter().enumerate() {
        let Some(now) = new.methods.get(index) else {
            changes.push(format!("method {index} `{}` was removed", was.name));
            continue;
        };
        let place = format!("method {index} `{}`", was.name);
        if was.name != now.name {
            changes.push(format!(
                "{place} is now `{}`: methods were reordered or renamed",
                now.name
            ));
            continue;
        }
        if was.streaming != now.streaming {
            let how = |streaming| {
                if streaming {
                    "streams its answers"
                } else {
                    "answers once"
                }
            };
            changes.push(format!(
                "{place} {} now, and {} before",
                how(now.streaming),
                how(was.streaming)
            ));
        }
        let mut compare = Compare {
            old,
            new,
            seen: BTreeSet::new(),
            changes: &mut changes,
        };
        compare.fields(&format!("{place}, its arguments"), &was.args, &now.args);
        compare.ty(&format!("{place}, its result"), &was.result, &now.result);
    }
    changes
}

/// One comparison: the two schemas, the named types already compared (so recursive types end),
/// and the changes found.
struct Compare<'a> {
    old: &'a ServiceSchema,
    new: &'a ServiceSchema,
    seen: BTreeSet<(String, String)>,
    changes: &'a mut Vec<String>,
}

impl Compare<'_> {
    fn ty(&mut self, place: &str, was: &Type, now: &Type) {
        match (was, now) {
            (Type::Named(was), Type::Named(now)) => self.named(place, was, now),
            (Type::Option(was), Type::Option(now)) | (Type::Seq(was), Type::Seq(now)) => {
                self.ty(place, was, now)
            }
            (
                Type::Map {
                    key: was_key,
                    value: was_value,
                },
                Type::Map {
                    key: now_key,
                    value: now_value,
                },
            ) => {
                self.ty(&format!("{place}, its keys"), was_key, now_key);
                self.ty(&format!("{place}, its values"), was_value, now_value);
            }
            (
                Type::Result {
                    ok: was_ok,
                    err: was_err,
                },
                Type::Result {
                    ok: now_ok,
                    err: now_err,
                },
            ) => {
                self.ty(&format!("{place}, Ok"), was_ok, now_ok);
                self.ty(&format!("{place}, Err"), was_err, now_err);
            }
            (Type::Tuple(was), Type::Tuple(now)) => self.types(place, was, now),
            (
                Type::Array {
                    item: was,
                    len: was_len,
                },
                Type::Array {
                    item: now,
                    len: now_len,
                },
            ) if was_len == now_len => self.ty(place, was, now),
            (was, now) if was == now => {}
            (was, now) => self
                .changes
                .push(format!("{place}: was {was:?}, is now {now:?}")),
        }
    }

    fn types(&mut self, place: &str, was: &[Type], now: &[Type]) {
        if was.len() != now.len() {
            self.changes.push(format!(
                "{place}: held {} values, now {}",
                was.len(),
                now.len()
            ));
            return;
        }
        for (index, (was, now)) in was.iter().zip(now).enumerate() {
            self.ty(&format!("{place}, value {index}"), was, now);
        }
    }

    fn fields(&mut self, place: &str, was: &[Field], now: &[Field]) {
        let names = |fields: &[Field]| fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        if names(was) != names(now) {
            self.changes.push(format!(
                "{place}: were ({}), are now ({})",
                names(was).join(", "),
                names(now).join(", ")
            ));
            return;
        }
        for (was, now) in was.iter().zip(now) {
            self.ty(&format!("{place}, `{}`", was.name), &was.ty, &now.ty);
        }
    }

    fn named(&mut self, place: &str, was: &str, now: &str) {
        if !self.seen.insert((was.to_owned(), now.to_owned())) {
            return;
        }
        let place = format!("{place}, type `{was}`");
        let (Some(was_def), Some(now_def)) = (self.old.types.get(was), self.new.types.get(now))
        else {
            self.changes
                .push(format!("{place}: its definition is missing"));
            return;
        };
        match (was_def, now_def) {
            (TypeDef::Struct(was), TypeDef::Struct(now)) => self.shape(&place, was, now),
            (TypeDef::Enum(was), TypeDef::Enum(now)) => {
                for variant in was {
                    match now.iter().find(|v| v.index == variant.index) {
                        Some(new) if new.name == variant.name => self.shape(
                            &format!("{place}, variant `{}`", variant.name),
                            &variant.shape,
                            &new.shape,
                        ),
                        Some(new) => self.changes.push(format!(
                            "{place}: variant {} was `{}`, is now `{}`",
                            variant.index, variant.name, new.name
                        )),
                        None => self.changes.push(format!(
                            "{place}: variant {} `{}` was removed",
                            variant.index, variant.name
                        )),
                    }
                }
                if now.len() > was.len() {
                    // Old clients cannot read a variant they do not know, nor send one they
                    // do not know; a new variant breaks them whenever it travels.
                    self.changes.push(format!(
                        "{place}: has {} new variant(s), which old clients cannot read",
                        now.len() - was.len()
                    ));
                }
            }
            _ => self
                .changes
                .push(format!("{place}: a struct became an enum or the reverse")),
        }
    }

    fn shape(&mut self, place: &str, was: &Shape, now: &Shape) {
        match (was, now) {
            (Shape::Unit, Shape::Unit) => {}
            (Shape::Newtype(was), Shape::Newtype(now)) => self.ty(place, was, now),
            (Shape::Tuple(was), Shape::Tuple(now)) => self.types(place, was, now),
            (Shape::Struct(was), Shape::Struct(now)) => {
                self.fields(&format!("{place}, its fields"), was, now)
            }
            _ => self
                .changes
                .push(format!("{place}: its shape changed ({was:?} to {now:?})")),
        }
    }
}
