use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

/// Settings from the environment alone.
fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
    Settings::load(&Sources {
        file: None,
        env: get,
        flags: Vec::new(),
    })
}

#[test]
fn precedence_defaults_file_env_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "cliproxy_url = \"http://file:1\"\nrequest_timeout = 30\nbatch_concurrency = 2\noutput_dir = \"out\"\n",
    )
    .unwrap();
    let get = env(&[
        ("MCP_CLIPROXY_URL", "http://env:2"),
        ("MCP_REQUEST_TIMEOUT", "45"),
        ("HOME", dir.path().to_str().unwrap()),
    ]);
    let s = Settings::load(&Sources {
        file: Some(file),
        env: &get,
        flags: vec![("cliproxy_url", "--cliproxy-url", "http://flag:3".into())],
    })
    .unwrap();
    assert_eq!(s.backend.cliproxy_url.as_str(), "http://flag:3/"); // flag beats env
    assert_eq!(s.backend.request_timeout, Duration::from_secs(45)); // env beats file
    assert_eq!(s.generation.batch_concurrency, 2); // file beats default
    assert_eq!(s.library.output_dir, dir.path().join("out")); // relative to the file
    assert_eq!(s.http.port, 8318); // default
    assert_eq!(s.generation.default_model, "gemini-3-pro-image-preview");
    assert_eq!(
        s.backend.cliproxy_api_key.as_ref().map(Secret::expose),
        Some("ccs-internal-managed")
    );
}

/// The fallback is off unless set; set in the file, it is overridden by
/// the environment like every other setting.
#[test]
fn fallback_model_is_opt_in_and_layered() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap().to_owned();
    let unset = from_env(&env(&[("HOME", &home)])).unwrap();
    assert_eq!(unset.generation.fallback_model, None);
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "fallback_model = \"gemini-2.5-flash-image\"\n").unwrap();
    let load = |pairs: &[(&str, &str)]| {
        Settings::load(&Sources {
            file: Some(file.clone()),
            env: &env(pairs),
            flags: Vec::new(),
        })
        .unwrap()
    };
    let from_file = load(&[("HOME", &home)]);
    assert_eq!(
        from_file.generation.fallback_model,
        Some("gemini-2.5-flash-image")
    );
    let from_env = load(&[
        ("HOME", &home),
        ("MCP_FALLBACK_MODEL", "gemini-3.1-flash-image-preview"),
    ]);
    assert_eq!(
        from_env.generation.fallback_model,
        Some("gemini-3.1-flash-image-preview")
    );
}

#[test]
fn default_output_dir_is_under_xdg_data_home_never_cwd() {
    let get = env(&[("XDG_DATA_HOME", "/data"), ("HOME", "/home/u")]);
    assert_eq!(
        default_output_dir(&get).unwrap(),
        PathBuf::from("/data/media-gen/generated")
    );
    let get = env(&[("HOME", "/home/u")]);
    assert_eq!(
        default_output_dir(&get).unwrap(),
        PathBuf::from("/home/u/.local/share/media-gen/generated")
    );
    let get = env(&[("XDG_DATA_HOME", "relative"), ("HOME", "/home/u")]);
    assert_eq!(
        default_output_dir(&get).unwrap(),
        PathBuf::from("/home/u/.local/share/media-gen/generated")
    );
    assert!(matches!(
        default_output_dir(&env(&[])),
        Err(ConfigError::NoDataDir)
    ));
}

#[test]
fn bad_values_name_setting_value_and_origin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_owned();
    let cases: &[(&str, &str, &str)] = &[
        ("MCP_CLIPROXY_URL", "not a url", "cliproxy_url"),
        ("MCP_CLIPROXY_URL", "ftp://x", "cliproxy_url"),
        ("MCP_REQUEST_TIMEOUT", "abc", "request_timeout"),
        ("MCP_REQUEST_TIMEOUT", "0", "request_timeout"),
        ("MCP_SSE_PORT", "99999", "http_port"),
        ("MCP_TRANSPORT", "carrier-pigeon", "transport"),
        ("MCP_DEFAULT_MODEL", "dall-e-3", "default_model"),
        ("MCP_FALLBACK_MODEL", "gemini-9-imaginary", "fallback_model"),
        // A video model cannot make an image in a rate-limited one's place.
        (
            "MCP_FALLBACK_MODEL",
            "veo-3.1-fast-generate-preview",
            "fallback_model",
        ),
        ("MCP_PREVIEW", "huge", "preview"),
        ("MCP_VIDEO_BACKEND", "sora", "video_backend"),
        ("MCP_CONFIRM_ABOVE_USD", "-1", "confirm_above_usd"),
        ("MCP_CONFIRM_ABOVE_USD", "a lot", "confirm_above_usd"),
        ("MCP_CONFIRM_ABOVE_USD", "NaN", "confirm_above_usd"),
    ];
    for (var, value, setting) in cases {
        let get = env(&[(var, value), ("MCP_OUTPUT_DIR", &out)]);
        let err = from_env(&get)
            .err()
            .unwrap_or_else(|| panic!("{var}={value} accepted"));
        let msg = err.to_string();
        assert!(msg.contains(&format!("`{setting}`")), "{msg}");
        assert!(msg.contains(&format!("`{value}`")), "{msg}");
        assert!(msg.contains(var), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}

#[test]
fn bad_file_values_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "http_port = 99999\n").unwrap();
    let get = env(&[("HOME", dir.path().to_str().unwrap())]);
    let err = Settings::load(&Sources {
        file: Some(file.clone()),
        env: &get,
        flags: Vec::new(),
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`http_port`") && err.contains("`99999`"),
        "{err}"
    );
    assert!(
        err.contains(&format!("config file `{}`", file.display())),
        "{err}"
    );
    // A flag names itself.
    let err = Settings::load(&Sources {
        file: None,
        env: &get,
        flags: vec![("transport", "--transport", "smoke".into())],
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("flag `--transport`"), "{err}");
}

#[test]
fn cleanup_settings() {
    assert_eq!(parse_bytes("10G"), Some(10 << 30));
    assert_eq!(parse_bytes("500MB"), Some(500 << 20));
    assert_eq!(parse_bytes("1234"), Some(1234));
    assert_eq!(parse_bytes("lots"), None);
    let dir = tempfile::tempdir().unwrap();
    let get = env(&[
        ("MCP_OUTPUT_DIR", dir.path().to_str().unwrap()),
        ("MCP_CLEANUP_MAX_AGE_DAYS", "30"),
        ("MCP_CLEANUP_MAX_TOTAL_BYTES", "2G"),
    ]);
    let s = from_env(&get).unwrap();
    assert_eq!(
        s.library.cleanup.max_age,
        Some(Duration::from_secs(30 * 86_400))
    );
    assert_eq!(s.library.cleanup.max_total_bytes, Some(2 << 30));
    let get = env(&[("MCP_OUTPUT_DIR", dir.path().to_str().unwrap())]);
    let s = from_env(&get).unwrap();
    assert_eq!(
        (s.library.cleanup.max_age, s.library.cleanup.max_total_bytes),
        (None, None),
        "off by default"
    );
    // In the file: a number, or a size with a unit.
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "cleanup_max_total_bytes = \"500M\"\ncleanup_max_age_days = 7\n",
    )
    .unwrap();
    let s = Settings::load(&Sources {
        file: Some(file),
        env: &get,
        flags: Vec::new(),
    })
    .unwrap();
    assert_eq!(s.library.cleanup.max_total_bytes, Some(500 << 20));
    assert_eq!(
        s.library.cleanup.max_age,
        Some(Duration::from_secs(7 * 86_400))
    );
}

#[test]
fn http_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let settings = |pairs: &[(&str, &str)]| {
        let mut all = vec![("MCP_OUTPUT_DIR", out)];
        all.extend_from_slice(pairs);
        let get = env(&all);
        from_env(&get)
    };
    let s = settings(&[]).unwrap().http;
    assert_eq!(s.allowed_hosts, ["localhost", "127.0.0.1", "::1"]);
    assert_eq!(s.allowed_origins.len(), 3);
    assert_eq!(s.max_body_bytes, 16 << 20);
    assert_eq!(s.max_sessions, 1024);
    assert_eq!(s.shutdown_grace, Duration::from_secs(10));
    assert_eq!(s.max_connections, None);
    assert_eq!(s.header_timeout, Duration::from_secs(10));
    // Bound to one address: that address is a valid Host too.
    let s = settings(&[("MCP_SSE_HOST", "10.1.2.3")]).unwrap().http;
    assert!(s.allowed_hosts.contains(&"10.1.2.3".to_owned()));
    // Bound to every interface: names cannot be known; the token protects.
    let s = settings(&[("MCP_SSE_HOST", "0.0.0.0")]).unwrap().http;
    assert!(s.allowed_hosts.is_empty());
    let s = settings(&[
        (
            "MCP_HTTP_ALLOWED_HOSTS",
            "media.example.com, media.example.com:8443",
        ),
        ("MCP_HTTP_ALLOWED_ORIGINS", "https://app.example.com,null"),
        ("MCP_HTTP_MAX_BODY_BYTES", "1M"),
        ("MCP_HTTP_MAX_SESSIONS", "5"),
        ("MCP_HTTP_SHUTDOWN_GRACE", "0"),
        ("MCP_HTTP_MAX_CONNECTIONS", "300"),
        ("MCP_HTTP_HEADER_TIMEOUT", "2"),
    ])
    .unwrap()
    .http;
    assert_eq!(
        s.allowed_hosts,
        ["media.example.com", "media.example.com:8443"]
    );
    assert_eq!(s.allowed_origins, ["https://app.example.com", "null"]);
    assert_eq!((s.max_body_bytes, s.max_sessions), (1 << 20, 5));
    assert_eq!(s.shutdown_grace, Duration::ZERO);
    assert_eq!(s.max_connections, Some(300));
    assert_eq!(s.header_timeout, Duration::from_secs(2));
    for (key, bad) in [
        ("MCP_HTTP_ALLOWED_ORIGINS", "app.example.com"),
        ("MCP_HTTP_MAX_BODY_BYTES", "10"),
        ("MCP_HTTP_MAX_SESSIONS", "0"),
        ("MCP_HTTP_SHUTDOWN_GRACE", "soon"),
        ("MCP_HTTP_MAX_CONNECTIONS", "0"),
        ("MCP_HTTP_HEADER_TIMEOUT", "0"),
    ] {
        let e = settings(&[(key, bad)]).unwrap_err().to_string();
        assert!(e.contains(bad) && e.contains(key), "{e}");
    }
    // Lists in the file are TOML arrays; input roots are relative to it.
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "http_allowed_hosts = [\"a.example\", \"b.example:8443\"]\ninput_roots = [\"pictures\", \"/abs\"]\n",
    )
    .unwrap();
    let get = env(&[("MCP_OUTPUT_DIR", out)]);
    let s = Settings::load(&Sources {
        file: Some(file),
        env: &get,
        flags: Vec::new(),
    })
    .unwrap()
    .http;
    assert_eq!(s.allowed_hosts, ["a.example", "b.example:8443"]);
    assert_eq!(
        s.input_roots,
        [dir.path().join("pictures"), PathBuf::from("/abs")]
    );
    let get = env(&[("MCP_OUTPUT_DIR", out), ("MCP_INPUT_ROOTS", "/x:/y")]);
    assert_eq!(
        from_env(&get).unwrap().http.input_roots,
        [PathBuf::from("/x"), PathBuf::from("/y")]
    );
}

#[test]
fn unknown_file_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "cliproxy_ulr = \"http://x\"\n").unwrap();
    let get = env(&[]);
    let err = Settings::load(&Sources {
        file: Some(file),
        env: &get,
        flags: Vec::new(),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("cliproxy_ulr"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn empty_environment_values_count_as_unset() {
    let dir = tempfile::tempdir().unwrap();
    let get = env(&[
        ("MCP_OUTPUT_DIR", dir.path().to_str().unwrap()),
        ("MCP_SSE_PORT", " "),
        ("MCP_GEMINI_API_KEY", ""),
        ("GEMINI_API_KEY", "from-the-fallback"),
    ]);
    let s = from_env(&get).unwrap();
    assert_eq!(s.http.port, 8318);
    assert_eq!(
        s.backend.gemini_api_key.as_ref().map(Secret::expose),
        Some("from-the-fallback")
    );
}

#[test]
fn debug_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let get = env(&[
        ("MCP_OUTPUT_DIR", dir.path().to_str().unwrap()),
        ("MCP_CLIPROXY_API_KEY", "sekrit-key"),
        ("MCP_HTTP_TOKEN", "sekrit-token"),
        ("MCP_GEMINI_API_KEY", "sekrit-gemini"),
    ]);
    let s = from_env(&get).unwrap();
    let dbg = format!("{s:?}");
    assert!(!dbg.contains("sekrit"), "{dbg}");
    assert!(dbg.contains("<redacted>"), "{dbg}");
}

#[test]
fn provenance_records_every_setting_with_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "batch_concurrency = 2\nhttp_token = \"sekrit-token\"\n",
    )
    .unwrap();
    let get = env(&[
        ("MCP_OUTPUT_DIR", dir.path().to_str().unwrap()),
        ("MCP_CLIPROXY_API_KEY", "sekrit-key"),
        ("GEMINI_API_KEY", "sekrit-gemini"),
        ("XDG_CONFIG_HOME", "/cfg"),
        ("MCP_CLEANUP_MAX_AGE_DAYS", "30"),
        ("MCP_VIDEO_POLL_INTERVAL", "0.5"),
    ]);
    let s = Settings::load(&Sources {
        file: Some(file.clone()),
        env: &get,
        flags: vec![("http_port", "--port", "9000".into())],
    })
    .unwrap();
    let p = &s.provenance;
    let keys: Vec<&str> = p.settings.iter().map(|s| s.key).collect();
    let table: Vec<&str> = layers::SETTINGS.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys, table,
        "every setting is recorded, in the table's order"
    );
    let entry = |key: &str| p.settings.iter().find(|s| s.key == key).unwrap().clone();
    assert_eq!(
        entry("batch_concurrency").origin,
        Origin::File(file.clone())
    );
    assert_eq!(entry("batch_concurrency").value.as_deref(), Some("2"));
    assert_eq!(entry("output_dir").origin, Origin::Env("MCP_OUTPUT_DIR"));
    assert_eq!(
        entry("gemini_api_key").origin,
        Origin::Env("GEMINI_API_KEY"),
        "the variable that was set, not the first of the list"
    );
    assert_eq!(entry("http_port").origin, Origin::Flag("--port"));
    assert_eq!(entry("http_port").value.as_deref(), Some("9000"));
    assert_eq!(entry("request_timeout").origin, Origin::Default);
    assert_eq!(entry("request_timeout").value.as_deref(), Some("120s"));
    assert_eq!(entry("cleanup_max_age_days").value.as_deref(), Some("30d"));
    assert_eq!(entry("video_poll_interval").value.as_deref(), Some("0.5s"));
    assert_eq!(entry("transport").value.as_deref(), Some("stdio"));
    assert_eq!(
        entry("cliproxy_url").value.as_deref(),
        Some("http://127.0.0.1:8317")
    );
    assert_eq!(entry("input_roots").value, None, "unset");
    assert_eq!(entry("default_model").env, ["MCP_DEFAULT_MODEL"]);
    // Secrets, set or default, are redacted.
    for key in ["cliproxy_api_key", "gemini_api_key", "http_token"] {
        assert_eq!(entry(key).value.as_deref(), Some("<redacted>"), "{key}");
    }
    assert!(!format!("{p:?}").contains("sekrit"));
    assert_eq!(p.file, Some(file.clone()));
    assert_eq!(
        p.default_file,
        Some(PathBuf::from("/cfg/media-gen/config.toml"))
    );
    // Where a user changes a value: where it is set, or its variable.
    assert_eq!(
        p.where_to_set("batch_concurrency"),
        format!("`batch_concurrency` in `{}`", file.display())
    );
    assert_eq!(p.where_to_set("http_port"), "`--port`");
    assert_eq!(p.where_to_set("gemini_api_key"), "`GEMINI_API_KEY`");
    assert_eq!(p.where_to_set("request_timeout"), "`MCP_REQUEST_TIMEOUT`");
    assert!(p.notes.is_empty());
    let get = env(&[("MCP_OUTPUT_DIR", dir.path().to_str().unwrap())]);
    assert_eq!(
        from_env(&get)
            .unwrap()
            .provenance
            .where_to_set("gemini_api_key"),
        "`MCP_GEMINI_API_KEY` (or `GEMINI_API_KEY`)"
    );
}

#[test]
fn a_base_url_ending_in_an_api_version_is_used_without_it_and_noted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    for (var, given, used) in [
        (
            "MCP_CLIPROXY_URL",
            "http://127.0.0.1:8317/v1",
            "http://127.0.0.1:8317/",
        ),
        (
            "MCP_CLIPROXY_URL",
            "http://127.0.0.1:8317/v1/",
            "http://127.0.0.1:8317/",
        ),
        (
            "MCP_CLIPROXY_URL",
            "https://proxy.example/cliproxy/v1",
            "https://proxy.example/cliproxy",
        ),
        (
            "MCP_GEMINI_URL",
            "https://generativelanguage.googleapis.com/v1beta",
            "https://generativelanguage.googleapis.com/",
        ),
        (
            "MCP_GEMINI_URL",
            "https://generativelanguage.googleapis.com/v1",
            "https://generativelanguage.googleapis.com/",
        ),
    ] {
        let get = env(&[("MCP_OUTPUT_DIR", out), (var, given)]);
        let s = from_env(&get).unwrap();
        let (url, key) = match var {
            "MCP_CLIPROXY_URL" => (&s.backend.cliproxy_url, "cliproxy_url"),
            _ => (&s.backend.gemini_url, "gemini_url"),
        };
        assert_eq!(url.as_str(), used, "{given}");
        let [note] = s.provenance.notes.as_slice() else {
            panic!("one note for {given}: {:?}", s.provenance.notes)
        };
        assert_eq!(note.setting, key);
        assert_eq!(note.origin, Origin::Env(var));
        assert_eq!(note.value, used.trim_end_matches('/'));
        let shown = note.to_string();
        assert!(shown.contains(given) && shown.contains(var), "{shown}");
        assert_eq!(
            s.provenance
                .settings
                .iter()
                .find(|e| e.key == key)
                .unwrap()
                .value
                .as_deref(),
            Some(used.trim_end_matches('/')),
            "config shows the URL used"
        );
    }
    // A path that only looks similar is kept, without a note.
    let get = env(&[
        ("MCP_OUTPUT_DIR", out),
        ("MCP_CLIPROXY_URL", "http://127.0.0.1:8317/api-v1"),
    ]);
    let s = from_env(&get).unwrap();
    assert_eq!(
        s.backend.cliproxy_url.as_str(),
        "http://127.0.0.1:8317/api-v1"
    );
    assert!(s.provenance.notes.is_empty());
}

#[test]
fn prices_and_budgets_from_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        r#"budget_daily_usd = 5
budget_monthly_usd = 40

[prices."gemini-3-pro-image-preview"]
per_image_usd = { "4k" = 0.2, "1K" = 0.1 }

[prices.grok-imagine-video]
per_second_usd = { "720p" = 0.05 }
"#,
    )
    .unwrap();
    let home = dir.path().to_str().unwrap().to_owned();
    let load = |pairs: &[(&str, &str)]| {
        let mut pairs = pairs.to_vec();
        pairs.push(("HOME", &home));
        Settings::load(&Sources {
            file: Some(file.clone()),
            env: &env(&pairs),
            flags: Vec::new(),
        })
    };
    let s = load(&[("MCP_BUDGET_DAILY_USD", "2.50")]).unwrap();
    assert_eq!(s.spend.budget_daily_usd, Some(2.5), "environment over file");
    assert_eq!(s.spend.budget_monthly_usd, Some(40.0));
    let pro = s
        .spend
        .prices
        .iter()
        .find(|o| o.model == "gemini-3-pro-image-preview")
        .unwrap();
    assert!(pro.per_image_usd.contains(&(domain::ImageSize::S4K, 0.2)));
    assert!(pro.per_image_usd.contains(&(domain::ImageSize::S1K, 0.1)));
    let grok = s
        .spend
        .prices
        .iter()
        .find(|o| o.model == "grok-imagine-video")
        .unwrap();
    assert_eq!(grok.per_second_usd, [("720p", 0.05)]);
    let p = &s.provenance;
    assert_eq!(p.origin("prices"), Origin::File(file.clone()));
    assert_eq!(
        p.origin("budget_daily_usd"),
        Origin::Env("MCP_BUDGET_DAILY_USD")
    );
    // Unset: no caps, no overrides.
    let none = from_env(&env(&[("HOME", &home)])).unwrap();
    assert_eq!(none.spend, SpendSettings::default());
    // Bad values name what is wrong.
    let err = load(&[("MCP_BUDGET_MONTHLY_USD", "lots")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("budget_monthly_usd") && err.contains("MCP_BUDGET_MONTHLY_USD"),
        "{err}"
    );
    for (toml, want) in [
        (
            "[prices.dall-e-3]\nper_image_usd = { \"1K\" = 1 }\n",
            "unknown model `dall-e-3`",
        ),
        (
            "[prices.gemini-2.5-flash-image]\nper_image_usd = { \"1K\" = 1 }\n",
            "quote ids with dots",
        ),
        (
            "[prices.\"gemini-2.5-flash-image\"]\nper_image_usd = { \"4K\" = 1 }\n",
            "`image_size` = `4K` is not supported by `gemini-2.5-flash-image`",
        ),
        (
            "[prices.\"veo-2.0-generate-001\"]\nper_second_usd = { \"4k\" = 1 }\n",
            "has no resolution `4k`",
        ),
        (
            "[prices.\"veo-2.0-generate-001\"]\nper_image_usd = { \"1K\" = 1 }\n",
            "use `per_second_usd`",
        ),
        (
            "[prices.\"veo-2.0-generate-001\"]\nper_second_usd = { \"720p\" = -1 }\n",
            "0 or more",
        ),
    ] {
        std::fs::write(&file, toml).unwrap();
        let err = load(&[]).unwrap_err().to_string();
        assert!(
            err.contains(want) && err.contains("`prices`"),
            "{toml}: {err}"
        );
    }
}

/// `confirm_above_usd`: unset asks never; the environment beats the file;
/// a leading `$` is allowed.
#[test]
fn confirm_threshold_layers() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap();
    let unset = from_env(&env(&[("HOME", home)])).unwrap();
    assert_eq!(unset.confirm.above_usd, None);
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "confirm_above_usd = 0.5\n").unwrap();
    let load = |pairs: &[(&str, &str)]| {
        let get = env(pairs);
        Settings::load(&Sources {
            file: Some(file.clone()),
            env: &get,
            flags: Vec::new(),
        })
        .unwrap()
    };
    assert_eq!(load(&[("HOME", home)]).confirm.above_usd, Some(0.5));
    let s = load(&[("HOME", home), ("MCP_CONFIRM_ABOVE_USD", "$2")]);
    assert_eq!(s.confirm.above_usd, Some(2.0));
}
