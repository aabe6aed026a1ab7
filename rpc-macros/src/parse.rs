//! What `#[rpc_core::service(...)]` is given: its arguments and the trait it is put on.
//!
//! The trait takes the form `#[tarpc::service]` takes: `async fn` declarations without `self`
//! and without bodies, each argument a plain name. Anything else is refused here, with its span,
//! before a line is generated.

use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::token::Comma;
use syn::{
    Attribute, Expr, FnArg, Ident, LitStr, Pat, PatType, ReturnType, Token, Type, Visibility,
    braced, bracketed, parenthesized,
};

use crate::names;

/// The attribute's arguments: `name = "notes", trace = [Kind], samples = [expr, ...]`.
pub struct Args {
    /// The name the service is hosted under, and where it was written (the trait's name when
    /// not given).
    pub name: Option<LitStr>,
    /// Types traced on their own before the methods (enums nested inside structs).
    pub trace: Vec<Type>,
    /// Values given to the tracer for types whose `Deserialize` validates its input.
    pub samples: Vec<Expr>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args {
            name: None,
            trace: Vec::new(),
            samples: Vec::new(),
        };
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            let key_name = key.to_string();
            if seen.contains(&key_name) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("`{key_name}` is given twice"),
                ));
            }
            input.parse::<Token![=]>()?;
            match key_name.as_str() {
                "name" => args.name = Some(input.parse()?),
                "trace" => args.trace = bracketed_list(input, Type::parse)?,
                "samples" => args.samples = bracketed_list(input, Expr::parse)?,
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown argument `{key_name}`: #[rpc_core::service] takes `name = \"...\"`, `trace = [Type, ...]` and `samples = [value, ...]`"
                        ),
                    ));
                }
            }
            seen.push(key_name);
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// `[a, b, ...]`, each item parsed by `item`.
fn bracketed_list<T>(
    input: ParseStream,
    item: fn(ParseStream) -> syn::Result<T>,
) -> syn::Result<Vec<T>> {
    let content;
    bracketed!(content in input);
    Ok(
        Punctuated::<T, Comma>::parse_terminated_with(&content, item)?
            .into_iter()
            .collect(),
    )
}

/// The trait: `pub trait Notes { async fn add(title: String) -> Note; ... }`.
pub struct ServiceTrait {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub ident: Ident,
    pub methods: Vec<Method>,
}

/// One `async fn` of the trait.
pub struct Method {
    pub attrs: Vec<Attribute>,
    pub ident: Ident,
    /// The arguments, in order: each a plain name and its type.
    pub args: Vec<(Ident, Type)>,
    /// What it returns: `()` when it declares nothing.
    pub output: Type,
    /// For a streaming method (one returning `Streaming<T>`), the item type `T`.
    pub stream_item: Option<Type>,
    /// Its request and response variant: the method's name in CamelCase, as tarpc spells it.
    pub variant: Ident,
}

impl Method {
    /// The method's `#[cfg(...)]` attributes, which its variants and match arms carry too.
    pub fn cfgs(&self) -> Vec<&Attribute> {
        self.attrs
            .iter()
            .filter(|attr| attr.path().is_ident("cfg"))
            .collect()
    }

    /// The method's doc comment, one line per `///` line.
    pub fn doc(&self) -> String {
        let mut lines = Vec::new();
        for attr in &self.attrs {
            if !attr.path().is_ident("doc") {
                continue;
            }
            if let syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }),
                ..
            }) = &attr.meta
            {
                let text = text.value();
                lines.push(text.strip_prefix(' ').unwrap_or(&text).to_owned());
            }
        }
        lines.join("\n")
    }
}

impl Parse for ServiceTrait {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        input.parse::<Token![trait]>()?;
        let ident: Ident = input.parse()?;
        if input.peek(Token![<]) || input.peek(Token![:]) || input.peek(Token![where]) {
            return Err(input.error(
                "a service trait takes no generics, supertraits or where clause: its request and response types travel between programs",
            ));
        }
        let content;
        braced!(content in input);
        let mut methods = Vec::new();
        while !content.is_empty() {
            methods.push(content.parse::<Method>()?);
        }
        let mut errors = Errors::default();
        for method in &methods {
            if method.ident == "new" {
                errors.push(syn::Error::new(
                    method.ident.span(),
                    format!(
                        "method name conflicts with generated fn `{}Client::new`",
                        ident.unraw()
                    ),
                ));
            }
            if method.ident == "serve" {
                errors.push(syn::Error::new(
                    method.ident.span(),
                    format!("method name conflicts with generated fn `{ident}::serve`"),
                ));
            }
        }
        errors.finish()?;
        Ok(ServiceTrait {
            attrs,
            vis,
            ident,
            methods,
        })
    }
}

impl Parse for Method {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        if let Some(cfg) = attrs.iter().find(|attr| attr.path().is_ident("cfg")) {
            // A method compiled out would leave the schema's method positions and the response
            // enum's variants out of step, and a build with and one without it would number
            // the methods after it differently on the wire.
            return Err(syn::Error::new_spanned(
                cfg,
                "#[cfg] on a service method is not supported: a method's position is its number \
                 on the wire, so every build must declare the same methods; declare it always \
                 (its implementation may still answer an error where the feature is off)",
            ));
        }
        input.parse::<Token![async]>()?;
        input.parse::<Token![fn]>()?;
        let ident: Ident = input.parse()?;
        let content;
        parenthesized!(content in input);
        let mut args = Vec::new();
        let mut errors = Errors::default();
        for arg in content.parse_terminated(FnArg::parse, Comma)? {
            match arg {
                FnArg::Typed(PatType { attrs, pat, ty, .. }) => {
                    if let Some(attr) = attrs.first() {
                        errors.push(syn::Error::new(
                            attr.span(),
                            "attributes on RPC arguments are not supported: put serde attributes on a field of an argument's type",
                        ));
                    }
                    match *pat {
                        Pat::Ident(pat)
                            if pat.by_ref.is_none()
                                && pat.mutability.is_none()
                                && pat.subpat.is_none() =>
                        {
                            args.push((pat.ident, *ty))
                        }
                        pat => errors.push(syn::Error::new(
                            pat.span(),
                            "patterns aren't allowed in RPC args: give each argument a plain name",
                        )),
                    }
                }
                FnArg::Receiver(receiver) => errors.push(syn::Error::new(
                    receiver.span(),
                    "method args cannot start with self: the generated server trait adds it",
                )),
            }
        }
        errors.finish()?;
        let output = match input.parse::<ReturnType>()? {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => *ty,
        };
        input.parse::<Token![;]>()?;
        let stream_item = stream_item(&output);
        let variant = Ident::new(
            &names::snake_to_camel(&ident.unraw().to_string()),
            ident.span(),
        );
        Ok(Method {
            attrs,
            ident,
            args,
            output,
            stream_item,
            variant,
        })
    }
}

/// `T` when `output` is `Streaming<T>` (by any path: `rpc_core::Streaming<T>`), the type a
/// streaming method returns.
fn stream_item(output: &Type) -> Option<Type> {
    let Type::Path(path) = output else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Streaming" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(generic) = &last.arguments else {
        return None;
    };
    match generic.args.iter().collect::<Vec<_>>().as_slice() {
        [syn::GenericArgument::Type(item)] => Some(item.clone()),
        _ => None,
    }
}

/// Errors gathered so that one compile shows all of them, as tarpc does.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The service's name: the `name` argument, checked, or the trait's name in snake_case.
pub fn service_name(args: &Args, ident: &Ident) -> syn::Result<String> {
    let (name, span) = match &args.name {
        Some(lit) => (lit.value(), lit.span()),
        None => (names::snake_case(&ident.unraw().to_string()), ident.span()),
    };
    names::check_service_name(&name).map_err(|rule| syn::Error::new(span, rule))?;
    Ok(name)
}
