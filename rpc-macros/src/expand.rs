//! The code `#[rpc_core::service]` generates for `trait Notes`.
//!
//! The request and response enums are those `#[tarpc::service]` generates (same variants, same
//! order, same fields, same serde derives), so the bytes on the wire are the same; every path
//! goes through `::rpc_core`, so a user's crate needs neither tarpc nor serde's derive in scope.
//! What differs is around them: the server trait's futures are declared `Send`, and the client
//! implements `rpc_core::Service`, which binds it to its name and schema.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;
use syn::ext::IdentExt;

use crate::parse::{Args, ServiceTrait};
use crate::schema;

/// Everything generated for one service trait.
pub fn expand(args: &Args, service: &ServiceTrait, name: &str) -> TokenStream {
    let names = Names::new(&service.ident);
    [
        server_trait(service, &names),
        serve_struct(service, &names),
        request_enum(service, &names),
        response_enum(service, &names),
        client(service, &names),
        service_impl(args, service, &names, name),
    ]
    .into_iter()
    .collect()
}

/// The generated items' names, and the hygienic names of the generated code's own variables
/// (so an argument called `ctx` or `request` cannot clash with them).
struct Names {
    service: Ident,
    serve: Ident,
    client: Ident,
    request: Ident,
    response: Ident,
    ctx: Ident,
    req: Ident,
}

impl Names {
    fn new(service: &Ident) -> Self {
        Names {
            service: service.clone(),
            serve: format_ident!("Serve{}", service),
            client: format_ident!("{}Client", service),
            request: format_ident!("{}Request", service),
            response: format_ident!("{}Response", service),
            ctx: Ident::new("ctx", Span::mixed_site()),
            req: Ident::new("request", Span::mixed_site()),
        }
    }
}

/// The trait a server implements: each method takes `self` and a context and returns a `Send`
/// future, so an implementation may still be written as an `async fn`.
fn server_trait(service: &ServiceTrait, names: &Names) -> TokenStream {
    let ServiceTrait { attrs, vis, .. } = service;
    let Names {
        service: ident,
        serve,
        ctx,
        ..
    } = names;
    let methods = service.methods.iter().map(|method| {
        let attrs = &method.attrs;
        let name = &method.ident;
        let args = method.args.iter().map(|(arg, ty)| quote!(#arg: #ty));
        let output = &method.output;
        quote! {
            #( #attrs )*
            fn #name(self, #ctx: ::rpc_core::tarpc::context::Context, #( #args ),*)
                -> impl ::core::future::Future<Output = #output> + ::core::marker::Send;
        }
    });
    let serve_doc = format!(
        "This implementation as a service `rpc_server::Server::add` can host: `{serve}<Self>`."
    );
    quote! {
        #( #attrs )*
        #vis trait #ident: ::core::marker::Sized {
            #( #methods )*

            #[doc = #serve_doc]
            fn serve(self) -> #serve<Self> {
                #serve { service: self }
            }
        }
    }
}

/// `ServeNotes<S>`: a server implementation ready to answer requests, for `rpc-server` (through
/// `rpc_core::ServeService`) and for tarpc's own server (through `tarpc::server::Serve`).
fn serve_struct(service: &ServiceTrait, names: &Names) -> TokenStream {
    let vis = &service.vis;
    let Names {
        service: ident,
        serve,
        client,
        request,
        response,
        ctx,
        req,
    } = names;
    let arms = service.methods.iter().map(|method| {
        let cfgs = method.cfgs();
        let name = &method.ident;
        let variant = &method.variant;
        let args: Vec<_> = method.args.iter().map(|(arg, _)| arg).collect();
        let handled = quote!(#ident::#name(self.service, #ctx, #( #args ),*).await);
        let answer = match &method.stream_item {
            None => quote! {
                ::rpc_core::Answer::One(::core::result::Result::Ok(#response::#variant(#handled)))
            },
            Some(_) => quote!(::rpc_core::Streaming::into_answer(#handled, #response::#variant)),
        };
        quote! {
            #( #cfgs )*
            #request::#variant { #( #args ),* } => #answer,
        }
    });
    let doc = format!(
        "A [`{ident}`] implementation that answers [`{request}`]s: what [`{ident}::serve`] returns."
    );
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #vis struct #serve<S> {
            service: S,
        }

        impl<S: #ident> #serve<S> {
            async fn answer(
                self,
                #ctx: ::rpc_core::tarpc::context::Context,
                #req: #request,
            ) -> ::rpc_core::Answer<#response> {
                match #req {
                    #( #arms )*
                }
            }
        }

        impl<S> ::rpc_core::ServeService for #serve<S>
        where
            S: #ident + ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static,
        {
            type Service = #client;

            fn call(
                self,
                #ctx: ::rpc_core::tarpc::context::Context,
                #req: #request,
            ) -> impl ::core::future::Future<Output = ::rpc_core::Answer<#response>>
                + ::core::marker::Send {
                self.answer(#ctx, #req)
            }
        }

        impl<S: #ident> ::rpc_core::tarpc::server::Serve for #serve<S> {
            type Req = #request;
            type Resp = #response;

            async fn serve(
                self,
                #ctx: ::rpc_core::tarpc::context::Context,
                #req: #request,
            ) -> ::core::result::Result<#response, ::rpc_core::tarpc::ServerError> {
                self.answer(#ctx, #req).await.into_single()
            }
        }
    }
}

/// The serde derives tarpc puts on its enums, through `rpc_core`'s serde.
fn serde_derives() -> TokenStream {
    quote! {
        #[derive(
            ::core::fmt::Debug,
            ::rpc_core::serde::Serialize,
            ::rpc_core::serde::Deserialize,
        )]
        #[serde(crate = "::rpc_core::serde")]
    }
}

/// `NotesRequest`: one struct variant per method, its arguments as fields, in order.
fn request_enum(service: &ServiceTrait, names: &Names) -> TokenStream {
    let vis = &service.vis;
    let Names {
        service: ident,
        request,
        ..
    } = names;
    let derives = serde_derives();
    let variants = service.methods.iter().map(|method| {
        let cfgs = method.cfgs();
        let variant = &method.variant;
        let fields = method.args.iter().map(|(arg, ty)| quote!(#arg: #ty));
        quote! {
            #( #cfgs )*
            #variant { #( #fields ),* }
        }
    });
    let request_names = service.methods.iter().map(|method| {
        let cfgs = method.cfgs();
        let variant = &method.variant;
        let name = format!("{ident}.{}", method.ident);
        quote! {
            #( #cfgs )*
            #request::#variant { .. } => #name,
        }
    });
    quote! {
        /// The request sent over the wire from the client to the server.
        #[allow(missing_docs)]
        #derives
        #vis enum #request {
            #( #variants ),*
        }

        impl ::rpc_core::tarpc::RequestName for #request {
            fn name(&self) -> &str {
                match self {
                    #( #request_names )*
                }
            }
        }
    }
}

/// `NotesResponse`: one newtype variant per method. Like tarpc's, it keeps a variant for a
/// method `#[cfg]`-ed out of the request, so the two enums number their variants as tarpc's do.
fn response_enum(service: &ServiceTrait, names: &Names) -> TokenStream {
    let vis = &service.vis;
    let response = &names.response;
    let derives = serde_derives();
    let variants = service.methods.iter().map(|method| {
        let variant = &method.variant;
        match &method.stream_item {
            None => {
                let output = &method.output;
                quote!(#variant(#output))
            }
            Some(item) => quote!(#variant(::rpc_core::StreamEvent<#item>)),
        }
    });
    quote! {
        /// The response sent over the wire from the server to the client.
        #[allow(missing_docs)]
        #derives
        #vis enum #response {
            #( #variants ),*
        }
    }
}

/// `NotesClient<Stub>`: one method per service method, over any tarpc stub.
fn client(service: &ServiceTrait, names: &Names) -> TokenStream {
    let vis = &service.vis;
    let Names {
        service: ident,
        client,
        request,
        response,
        ctx,
        req,
        ..
    } = names;
    let methods = service.methods.iter().map(|method| {
        let attrs = &method.attrs;
        let name = &method.ident;
        let variant = &method.variant;
        let params = method.args.iter().map(|(arg, ty)| quote!(#arg: #ty));
        let args = method.args.iter().map(|(arg, _)| arg);
        let output = &method.output;
        let wrong_answer = format!("the server answered {name} with another method's response");
        if let Some(item) = &method.stream_item {
            let full_name = format!("{ident}.{}", name.unraw());
            return quote! {
                #[allow(unused)]
                #( #attrs )*
                #vis fn #name(&self, #ctx: ::rpc_core::tarpc::context::Context, #( #params ),*)
                    -> impl ::core::future::Future<
                        Output = ::core::result::Result<
                            ::rpc_core::Subscription<#item>,
                            ::rpc_core::tarpc::client::RpcError,
                        >,
                    > + '_
                where
                    Stub: ::rpc_core::StreamStub,
                {
                    let #req = #request::#variant { #( #args ),* };
                    let answers = ::rpc_core::StreamStub::open(
                        &self.0,
                        #ctx,
                        #req,
                        |answer| ::core::matches!(
                            answer,
                            #response::#variant(::rpc_core::StreamEvent::End)
                        ),
                    );
                    async move {
                        ::core::result::Result::Ok(::rpc_core::Subscription::new(
                            answers.await?,
                            |answer| match answer {
                                #response::#variant(event) => ::core::option::Option::Some(event),
                                #[allow(unreachable_patterns)]
                                _ => ::core::option::Option::None,
                            },
                            #full_name,
                        ))
                    }
                }
            };
        }
        quote! {
            #[allow(unused)]
            #( #attrs )*
            #vis fn #name(&self, #ctx: ::rpc_core::tarpc::context::Context, #( #params ),*)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<#output, ::rpc_core::tarpc::client::RpcError>,
                > + '_ {
                let #req = #request::#variant { #( #args ),* };
                let answer = ::rpc_core::tarpc::client::stub::Stub::call(&self.0, #ctx, #req);
                async move {
                    match answer.await? {
                        #response::#variant(value) => ::core::result::Result::Ok(value),
                        // Another method's answer: a broken or hostile server, never a panic.
                        #[allow(unreachable_patterns)]
                        _ => ::core::result::Result::Err(
                            ::rpc_core::tarpc::client::RpcError::Server(
                                ::rpc_core::tarpc::ServerError::new(
                                    ::std::io::ErrorKind::InvalidData,
                                    #wrong_answer.to_owned(),
                                ),
                            ),
                        ),
                    }
                }
            }
        }
    });
    let doc = format!(
        "Calls a [`{ident}`] service: connect one with `rpc_client::Connector::connect::<{client}>()`. Every method returns a future."
    );
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #vis struct #client<
            Stub = ::rpc_core::tarpc::client::Channel<#request, #response>
        >(Stub);

        impl #client {
            /// A client over `transport` and the tarpc dispatch task that drives it, as tarpc's
            /// generated `new` returns them (spawn it with `.spawn()`).
            #vis fn new<T>(
                config: ::rpc_core::tarpc::client::Config,
                transport: T,
            ) -> ::rpc_core::tarpc::client::NewClient<
                Self,
                ::rpc_core::tarpc::client::RequestDispatch<#request, #response, T>,
            >
            where
                T: ::rpc_core::tarpc::Transport<
                    ::rpc_core::tarpc::ClientMessage<#request>,
                    ::rpc_core::tarpc::Response<#response>,
                >,
            {
                let new_client = ::rpc_core::tarpc::client::new(config, transport);
                ::rpc_core::tarpc::client::NewClient {
                    client: #client(new_client.client),
                    dispatch: new_client.dispatch,
                }
            }
        }

        impl<Stub> ::core::convert::From<Stub> for #client<Stub>
        where
            Stub: ::rpc_core::tarpc::client::stub::Stub<Req = #request, Resp = #response>,
        {
            /// A client that calls through `stub`.
            fn from(stub: Stub) -> Self {
                #client(stub)
            }
        }

        impl<Stub> #client<Stub>
        where
            Stub: ::rpc_core::tarpc::client::stub::Stub<Req = #request, Resp = #response>,
        {
            #( #methods )*
        }
    }
}

/// `impl rpc_core::Service for NotesClient`: the name, the wire types and the schema, bound
/// together; and a compile-time check of the name against `rpc_core`'s own rule.
fn service_impl(args: &Args, service: &ServiceTrait, names: &Names, name: &str) -> TokenStream {
    let Names {
        client,
        request,
        response,
        ..
    } = names;
    let schema = schema::schema_fn(name, &service.methods, &args.trace, &args.samples);
    quote! {
        impl ::rpc_core::Service for #client {
            const NAME: &'static str = #name;
            type Request = #request;
            type Response = #response;
            type With<S> = #client<S>;

            fn from_stub<S>(stub: S) -> #client<S>
            where
                S: ::rpc_core::tarpc::client::stub::Stub<Req = #request, Resp = #response>,
            {
                #client(stub)
            }

            #schema
        }

        const _: () = ::core::assert!(
            ::rpc_core::is_valid_service_name(#name),
            "rpc_core and rpc_macros disagree about service names",
        );
    }
}
