using Newtonsoft.Json.Linq;
using PgState.Engine.Diagnostics;

namespace PgState.Engine.Manifests;

/// <summary>One manifest document: a host's desired state, with the YAML positions of its nodes.</summary>
public sealed record ManifestDocument(string File, JObject Root, SourcePosition Position)
{
    public string HostName => (string?)Root["metadata"]?["name"] ?? "";

    public JObject Spec => Root["spec"] as JObject ?? [];
}

public sealed record SecretReference(string? FromEnv, string? FromFile)
{
    /// <summary>Resolves the secret; the message of a failure never contains the value.</summary>
    public string Resolve(Func<string, string?> environment)
    {
        if (FromEnv is not null)
        {
            return environment(FromEnv) ?? throw new PgStateException($"environment variable '{FromEnv}' (a secret) is not set");
        }
        try
        {
            return File.ReadAllText(FromFile!).TrimEnd('\r', '\n');
        }
        catch (IOException e)
        {
            throw new PgStateException($"cannot read secret file '{FromFile}': {e.GetType().Name}");
        }
        catch (UnauthorizedAccessException)
        {
            throw new PgStateException($"cannot read secret file '{FromFile}': permission denied");
        }
    }

    public static SecretReference? From(JToken? token) => token is JObject o
        ? new SecretReference((string?)o["fromEnv"], (string?)o["fromFile"])
        : null;
}

public sealed record ConnectionSpec(string Host, int Port, string User, string Database, SecretReference? Password, int ConnectTimeoutSeconds)
{
    public string Describe() => $"{User}@{Host}:{Port}/{Database}";
}

public enum RestartPolicy
{
    Never,
    Allowed,
}

public sealed record RestartSpec(RestartPolicy Policy, string? Service, IReadOnlyList<string>? Command, string? LogFile, TimeSpan Timeout);

/// <summary>The engine's view of a host document: how to reach it and how it may be restarted.</summary>
public sealed record HostManifest(ManifestDocument Document, string Name, ConnectionSpec Connection, string? DataDirectory, RestartSpec Restart)
{
    internal static HostManifest Bind(ManifestDocument document)
    {
        var spec = document.Spec;
        var c = spec["connection"] as JObject ?? [];
        var connection = new ConnectionSpec(
            (string?)c["host"] ?? "/var/run/postgresql",
            (int?)c["port"] ?? 5432,
            (string?)c["user"] ?? "postgres",
            (string?)c["database"] ?? "postgres",
            SecretReference.From(c["password"]),
            (int?)c["connectTimeout"] ?? 10);
        var r = spec["restart"] as JObject ?? [];
        var restart = new RestartSpec(
            (string?)r["policy"] == "allowed" ? RestartPolicy.Allowed : RestartPolicy.Never,
            (string?)r["service"],
            (r["command"] as JArray)?.Select(t => (string)t!).ToList(),
            (string?)r["logFile"],
            Durations.Parse((string?)r["timeout"] ?? "60s"));
        return new HostManifest(document, document.HostName, connection, (string?)spec["dataDirectory"], restart);
    }

    public HostManifest WithConnection(string? host, int? port, string? user) => this with
    {
        Connection = Connection with
        {
            Host = host ?? Connection.Host,
            Port = port ?? Connection.Port,
            User = user ?? Connection.User,
        },
    };
}

public static class Sizes
{
    /// <summary>Parses the schema's sizes: 512kB, 64MB, 10GB, 1TB (1024-based, like PostgreSQL).</summary>
    public static long Parse(string text)
    {
        var digits = new string([.. text.TakeWhile(char.IsAsciiDigit)]);
        var n = long.Parse(digits, System.Globalization.CultureInfo.InvariantCulture);
        return text[digits.Length..] switch
        {
            "kB" => n << 10,
            "MB" => n << 20,
            "GB" => n << 30,
            "TB" => n << 40,
            _ => throw new FormatException($"not a size: {text}"),
        };
    }
}

/// <summary>The SELinux types the PostgreSQL server domain (postgresql_t) may write.</summary>
public static class PostgresLabels
{
    public static readonly IReadOnlyList<string> Writable = ["postgresql_db_t", "postgresql_log_t", "postgresql_tmp_t", "postgresql_var_run_t"];
}

public static class Durations
{
    /// <summary>Parses 500ms, 30s, 5min, 1h, 2d (the schema's duration pattern).</summary>
    public static TimeSpan Parse(string text)
    {
        var digits = new string([.. text.TakeWhile(char.IsAsciiDigit)]);
        var value = long.Parse(digits, System.Globalization.CultureInfo.InvariantCulture);
        return text[digits.Length..] switch
        {
            "ms" => TimeSpan.FromMilliseconds(value),
            "s" => TimeSpan.FromSeconds(value),
            "min" => TimeSpan.FromMinutes(value),
            "h" => TimeSpan.FromHours(value),
            "d" => TimeSpan.FromDays(value),
            _ => throw new FormatException($"not a duration: {text}"),
        };
    }
}
