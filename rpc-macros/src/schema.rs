//! The generated `Service::schema`: every type a method's signature names, traced by
//! `rpc_core::schema::SchemaBuilder`, with the results cached for the process.
//!
//! serde-reflection learns an enum's variants only when it traces that enum on its own, so each
//! struct or enum written in a signature (`Note` and `NotesError` in `Result<Vec<Note>,
//! NotesError>`) is given to the builder as a root first; the containers serde sees through
//! (`Result`, `Option`, `Vec`, `Box`, maps, sets, tuples, arrays) and the primitives are peeled
//! off, since they are no named type.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, GenericArgument, PathArguments, Type};

use crate::parse::Method;

/// Containers whose first N type arguments are traced in their place (a map's hasher is not).
const CONTAINERS: &[(&str, usize)] = &[
    ("Result", 2),
    ("Option", 1),
    ("Vec", 1),
    ("Box", 1),
    ("HashMap", 2),
    ("BTreeMap", 2),
    ("HashSet", 1),
    ("BTreeSet", 1),
];

/// Types serde-reflection describes without a definition of their own.
const PRIMITIVES: &[&str] = &[
    "bool", "char", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128",
    "isize", "f32", "f64", "str", "String",
];

/// The body of `fn schema()`: traced once, then cloned out of a `OnceLock`.
pub fn schema_fn(name: &str, methods: &[Method], trace: &[Type], samples: &[Expr]) -> TokenStream {
    let mut roots = Vec::new();
    for method in methods {
        for (_, ty) in &method.args {
            named_types(ty, &mut roots);
        }
        named_types(
            method.stream_item.as_ref().unwrap_or(&method.output),
            &mut roots,
        );
    }
    for ty in trace {
        push_unique(ty, &mut roots);
    }
    let method_steps = methods.iter().map(|method| {
        let cfgs = method.cfgs();
        let method_name = method.ident.to_string();
        let method_name = method_name.strip_prefix("r#").unwrap_or(&method_name);
        let doc = method.doc();
        let arg_vars: Vec<_> = (0..method.args.len())
            .map(|i| quote::format_ident!("a{}", i))
            .collect();
        let arg_names = method.args.iter().map(|(ident, _)| {
            let name = ident.to_string();
            name.strip_prefix("r#").unwrap_or(&name).to_owned()
        });
        let arg_types = method.args.iter().map(|(_, ty)| ty);
        let (output, add) = match &method.stream_item {
            None => (&method.output, quote!(method)),
            Some(item) => (item, quote!(streaming_method)),
        };
        quote! {
            #( #cfgs )*
            {
                #( let #arg_vars = builder.trace::<#arg_types>()?; )*
                let result = builder.trace::<#output>()?;
                builder.#add(#method_name, #doc, ::std::vec![#( (#arg_names, #arg_vars) ),*], result);
            }
        }
    });
    quote! {
        fn schema() -> ::core::result::Result<
            ::rpc_core::schema::ServiceSchema,
            ::rpc_core::schema::SchemaError,
        > {
            fn trace() -> ::core::result::Result<
                ::rpc_core::schema::ServiceSchema,
                ::rpc_core::schema::SchemaError,
            > {
                let mut builder = ::rpc_core::schema::SchemaBuilder::new(#name);
                #( builder.sample(#samples); )*
                #( builder.root::<#roots>(); )*
                #( #method_steps )*
                ::core::result::Result::Ok(builder.finish())
            }
            static SCHEMA: ::std::sync::OnceLock<
                ::core::result::Result<
                    ::rpc_core::schema::ServiceSchema,
                    ::rpc_core::schema::SchemaError,
                >,
            > = ::std::sync::OnceLock::new();
            ::core::clone::Clone::clone(SCHEMA.get_or_init(trace))
        }
    }
}

/// Adds to `out` each struct or enum `ty` names, looking through containers.
fn named_types(ty: &Type, out: &mut Vec<Type>) {
    match ty {
        Type::Paren(inner) => named_types(&inner.elem, out),
        Type::Group(inner) => named_types(&inner.elem, out),
        Type::Tuple(tuple) => tuple.elems.iter().for_each(|elem| named_types(elem, out)),
        Type::Array(array) => named_types(&array.elem, out),
        Type::Path(path) if path.qself.is_none() => {
            let Some(last) = path.path.segments.last() else {
                return;
            };
            let ident = last.ident.to_string();
            match &last.arguments {
                PathArguments::None if PRIMITIVES.contains(&ident.as_str()) => {}
                PathArguments::AngleBracketed(generic) => {
                    match CONTAINERS.iter().find(|(name, _)| *name == ident) {
                        Some(&(_, traced)) => generic
                            .args
                            .iter()
                            .filter_map(|arg| match arg {
                                GenericArgument::Type(ty) => Some(ty),
                                _ => None,
                            })
                            .take(traced)
                            .for_each(|ty| named_types(ty, out)),
                        None => push_unique(ty, out),
                    }
                }
                _ => push_unique(ty, out),
            }
        }
        other => push_unique(other, out),
    }
}

fn push_unique(ty: &Type, out: &mut Vec<Type>) {
    let key = quote!(#ty).to_string();
    if !out.iter().any(|known| quote!(#known).to_string() == key) {
        out.push(ty.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(ty: &str) -> Vec<String> {
        let ty: Type = syn::parse_str(ty).expect("a type");
        let mut out = Vec::new();
        named_types(&ty, &mut out);
        out.iter().map(|ty| quote!(#ty).to_string()).collect()
    }

    #[test]
    fn containers_and_primitives_are_peeled_off() {
        assert_eq!(
            roots("Result<Vec<Note>, NotesError>"),
            ["Note", "NotesError"]
        );
        assert_eq!(roots("Option<(u64, Box<Tag>, [Kind; 4])>"), ["Tag", "Kind"]);
        assert_eq!(
            roots("std::collections::HashMap<String, Note, S>"),
            ["Note"]
        );
        assert!(roots("()").is_empty());
        assert!(roots("std::string::String").is_empty());
    }

    #[test]
    fn named_types_are_kept_whole_and_once() {
        assert_eq!(roots("(Note, Note)"), ["Note"]);
        assert_eq!(roots("serde_bytes::ByteBuf"), ["serde_bytes :: ByteBuf"]);
        assert_eq!(roots("Page<Note>"), ["Page < Note >"]);
    }
}
