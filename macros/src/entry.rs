//! Parsing, checking and expansion of the entry-point attributes.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, MetaNameValue, Path, ReturnType, Token};

/// Which attribute is being expanded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "mtcp::main",
            Kind::Test => "mtcp::test",
        }
    }
}

/// tokio's runtime flavours, accepted for source compatibility.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flavor {
    CurrentThread,
    MultiThread,
}

/// The options as written, each with its span, before checking.
#[derive(Default)]
struct RawConfig {
    cores: Option<(usize, Span)>,
    flavor: Option<(Flavor, Span)>,
    worker_threads: Option<(usize, Span)>,
    crate_path: Option<(Path, Span)>,
    start_paused: Option<(bool, Span)>,
}

/// The checked configuration.
struct Config {
    cores: Option<usize>,
    crate_path: Path,
    start_paused: bool,
}

fn default_crate_path() -> Path {
    syn::parse_quote!(::mtcp)
}

const OPTIONS: &str = "`cores`, `flavor`, `worker_threads`, `start_paused`, `crate`";

fn parse_int(expr: &Expr, name: &str) -> syn::Result<(usize, Span)> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => {
            let v = lit.base10_parse::<usize>().map_err(|_| {
                syn::Error::new(lit.span(), format!("`{name}` must be a positive integer"))
            })?;
            Ok((v, lit.span()))
        }
        other => Err(syn::Error::new(
            other.span(),
            format!("`{name}` must be an integer literal, e.g. `{name} = 4`"),
        )),
    }
}

fn parse_str(expr: &Expr, name: &str) -> syn::Result<(String, Span)> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok((lit.value(), lit.span())),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{name}` must be a string literal"),
        )),
    }
}

fn parse_bool(expr: &Expr, name: &str) -> syn::Result<(bool, Span)> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(lit),
            ..
        }) => Ok((lit.value, lit.span())),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{name}` must be `true` or `false`"),
        )),
    }
}

fn set<T>(slot: &mut Option<(T, Span)>, value: (T, Span), name: &str, at: Span) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            at,
            format!("`{name}` is set more than once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

impl RawConfig {
    fn parse(args: TokenStream) -> syn::Result<RawConfig> {
        let metas = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(args)?;
        let mut raw = RawConfig::default();
        for meta in metas {
            let span = meta.span();
            let Some(ident) = meta.path.get_ident() else {
                return Err(syn::Error::new(
                    meta.path.span(),
                    format!("unknown option; expected one of: {OPTIONS}"),
                ));
            };
            let name = ident.to_string();
            match name.as_str() {
                "cores" => {
                    let v = parse_int(&meta.value, "cores")?;
                    set(&mut raw.cores, v, "cores", span)?;
                }
                "worker_threads" => {
                    let v = parse_int(&meta.value, "worker_threads")?;
                    set(&mut raw.worker_threads, v, "worker_threads", span)?;
                }
                "flavor" => {
                    let (s, at) = parse_str(&meta.value, "flavor")?;
                    let flavor = match s.as_str() {
                        "current_thread" => Flavor::CurrentThread,
                        "multi_thread" => Flavor::MultiThread,
                        _ => {
                            return Err(syn::Error::new(
                                at,
                                format!(
                                    "no such runtime flavor `{s}`; expected `current_thread` or `multi_thread`"
                                ),
                            ))
                        }
                    };
                    set(&mut raw.flavor, (flavor, at), "flavor", span)?;
                }
                "start_paused" => {
                    let v = parse_bool(&meta.value, "start_paused")?;
                    set(&mut raw.start_paused, v, "start_paused", span)?;
                }
                "crate" => {
                    let (s, at) = parse_str(&meta.value, "crate")?;
                    let path = syn::parse_str::<Path>(&s).map_err(|_| {
                        syn::Error::new(at, format!("`crate` must be a path, found `{s}`"))
                    })?;
                    set(&mut raw.crate_path, (path, at), "crate", span)?;
                }
                _ => {
                    return Err(syn::Error::new(
                        ident.span(),
                        format!("unknown option `{name}`; expected one of: {OPTIONS}"),
                    ))
                }
            }
        }
        Ok(raw)
    }

    fn check(self) -> syn::Result<Config> {
        if let Some((0, span)) = self.cores {
            return Err(syn::Error::new(span, "`cores` must be at least 1"));
        }
        if let Some((0, span)) = self.worker_threads {
            return Err(syn::Error::new(span, "`worker_threads` must be at least 1"));
        }
        if let (Some((Flavor::CurrentThread, _)), Some((_, span))) =
            (self.flavor, self.worker_threads)
        {
            return Err(syn::Error::new(
                span,
                "`worker_threads` can only be used with `flavor = \"multi_thread\"`",
            ));
        }
        if let (Some((Flavor::MultiThread, _)), Some((true, span))) =
            (self.flavor, self.start_paused)
        {
            return Err(syn::Error::new(
                span,
                "`start_paused` requires the `current_thread` runtime flavor (in mtcp, time is paused per core; use `cores = N` for several)",
            ));
        }
        Ok(Config {
            cores: self.cores.map(|(n, _)| n),
            start_paused: self.start_paused.is_some_and(|(on, _)| on),
            crate_path: self
                .crate_path
                .map(|(p, _)| p)
                .unwrap_or_else(default_crate_path),
        })
    }
}

fn check_fn(input: &ItemFn, kind: Kind) -> syn::Result<()> {
    if input.sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            input.sig.fn_token,
            "the `async` keyword is missing from the function declaration",
        ));
    }
    if !input.sig.inputs.is_empty() {
        let what = match kind {
            Kind::Main => "the main function",
            Kind::Test => "the test function",
        };
        return Err(syn::Error::new_spanned(
            &input.sig.inputs,
            format!("{what} cannot accept arguments"),
        ));
    }
    if !input.sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.sig.generics,
            format!("#[{}] functions cannot be generic", kind.name()),
        ));
    }
    if kind == Kind::Test {
        if let Some(attr) = input.attrs.iter().find(|a| a.path().is_ident("test")) {
            return Err(syn::Error::new_spanned(
                attr,
                "second test attribute is supplied; `#[mtcp::test]` already marks the function as a test",
            ));
        }
    }
    Ok(())
}

/// Expands `#[mtcp::main]` or `#[mtcp::test]`.
pub(crate) fn main(args: TokenStream, item: TokenStream, kind: Kind) -> TokenStream {
    let input: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => return with_error(item, e),
    };
    let config = RawConfig::parse(args)
        .and_then(RawConfig::check)
        .and_then(|c| check_fn(&input, kind).map(|()| c));
    match config {
        Ok(config) => expand(input, kind, &config),
        Err(e) => with_error(expand_inert(input), e),
    }
}

fn with_error(mut tokens: TokenStream, error: syn::Error) -> TokenStream {
    tokens.extend(error.into_compile_error());
    tokens
}

/// `async fn f() -> T { body }` becomes
///
/// ```text
/// fn f() -> T {
///     async fn __mtcp_body() -> T { body }
///     ::mtcp::runtime::__main_entry(cores, __mtcp_body, ::mtcp::runtime::__report)
/// }
/// ```
///
/// With `start_paused = true` the body is `{ ::mtcp::time::pause(); body }`.
///
/// The inner function keeps the declared return type, so `?` and `return`
/// in the body behave as in any async fn, and it can be called once per
/// core.
fn expand(mut input: ItemFn, kind: Kind, config: &Config) -> TokenStream {
    let crate_path = &config.crate_path;
    let cores = match config.cores {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let body = &input.block;
    let output = &input.sig.output;
    let span = body.brace_token.span.join();
    // `start_paused`: each core's body pauses its core's clock first.
    let body = if config.start_paused {
        quote_spanned! {span=> { #crate_path::time::pause(); #body } }
    } else {
        quote!(#body)
    };
    let inner_ident = syn::Ident::new("__mtcp_body", span);
    let entry = match kind {
        Kind::Main => quote_spanned!(span=> __main_entry),
        Kind::Test => quote_spanned!(span=> __test_entry),
    };
    // `main` and tests return `Termination` types (the compiler checks):
    // the other cores' outputs are reported like `main`'s. Any other
    // function's output on cores other than 0 is dropped.
    let report = if kind == Kind::Test || input.sig.ident == "main" {
        quote_spanned!(span=> #crate_path::runtime::__report)
    } else {
        quote_spanned!(span=> #crate_path::runtime::__ignore)
    };
    let block = quote_spanned! {span=>
        {
            async fn #inner_ident() #output #body
            #crate_path::runtime::#entry(#cores, #inner_ident, #report)
        }
    };
    input.sig.asyncness = None;
    input.block = syn::parse2(block).expect("the expansion is a block");
    with_header(input, kind)
}

/// The expansion next to a `compile_error!`: the function, no longer async,
/// with its body still type-checked as an async block (so editors keep
/// working and no follow-up errors appear) but never run.
fn expand_inert(mut input: ItemFn) -> TokenStream {
    let body = &input.block;
    let output = match &input.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let span = body.brace_token.span.join();
    let block = quote_spanned! {span=>
        {
            let __mtcp_body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = #output>> =
                ::core::pin::pin!(async move #body);
            let _ = __mtcp_body;
            ::core::panic!("this function failed to compile")
        }
    };
    input.sig.asyncness = None;
    input.block = syn::parse2(block).expect("the expansion is a block");
    input.into_token_stream()
}

fn with_header(input: ItemFn, kind: Kind) -> TokenStream {
    let mut tokens = match kind {
        Kind::Main => TokenStream::new(),
        Kind::Test => quote!(#[::core::prelude::v1::test]),
    };
    input.to_tokens(&mut tokens);
    tokens
}
