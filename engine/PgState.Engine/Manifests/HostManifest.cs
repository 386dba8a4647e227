using PgState.Engine.Diagnostics;

namespace PgState.Engine.Manifests;

/// <summary>One manifest document: a host's desired state, as a positioned tree checked against the schema.</summary>
public sealed record ManifestDocument(string File, YamlMapping Root, SourcePosition Position)
{
    public string HostName => Root.Mapping("metadata").String("name") ?? "";

    public YamlMapping Spec => Root.Mapping("spec") ?? new YamlMapping(Position);
}

/// <summary>
/// Where a secret comes from: an environment variable or a file, never the manifest. A scheduled
/// job gets it from systemd's credentials ($CREDENTIALS_DIRECTORY/NAME) or a credentials directory
/// pgstate wrote; <see cref="CredentialName"/> is that NAME.
/// </summary>
public sealed record SecretReference(string? FromEnv, string? FromFile, SourcePosition? Position = null)
{
    public const int MaxSecretBytes = 64 * 1024;

    /// <summary>The name of this secret in a credentials directory: the variable's name, or file-BASENAME.</summary>
    public string CredentialName => FromEnv ?? "file-" + new string([.. Path.GetFileName(FromFile!).Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' ? c : '_')]);

    public string Describe() => FromEnv is not null ? $"environment variable '{FromEnv}'" : $"file '{FromFile}'";

    public bool Equals(SecretReference? other) => other is not null && FromEnv == other.FromEnv && FromFile == other.FromFile;

    public override int GetHashCode() => HashCode.Combine(FromEnv, FromFile);
}

/// <summary>Resolves secrets: environment, then the credentials directory (systemd's or pgstate's own), then the file.
/// Messages name where a secret was looked for, never its value.</summary>
public sealed class SecretResolver(Func<string, string?> environment, string? credentialsDirectory = null)
{
    private readonly Dictionary<SecretReference, string> _pinned = [];

    public string? CredentialsDirectory { get; } = credentialsDirectory ?? (environment("CREDENTIALS_DIRECTORY") is { Length: > 0 } d ? d : null);

    /// <summary>Reads a secret now and keeps it: a job about to give up root keeps what only root could read.</summary>
    public void Pin(SecretReference secret)
    {
        if (TryResolve(secret, out var value, out _))
        {
            _pinned[secret] = value;
        }
    }

    public bool TryResolve(SecretReference secret, out string value, out string? error)
    {
        error = null;
        if (_pinned.TryGetValue(secret, out var pinned))
        {
            value = pinned;
            return true;
        }
        value = "";
        if (secret.FromEnv is { } name && environment(name) is { } fromEnvironment)
        {
            value = fromEnvironment;
            return true;
        }
        if (CredentialsDirectory is { } dir && ReadBounded(Path.Combine(dir, secret.CredentialName), out value, out _))
        {
            return true;
        }
        if (secret.FromFile is { } file)
        {
            if (ReadBounded(file, out value, out var fileError))
            {
                return true;
            }
            error = $"cannot read secret file '{file}': {fileError}";
            return false;
        }
        error = $"environment variable '{secret.FromEnv}' (a secret) is not set" +
            (CredentialsDirectory is { } d2 ? $" and {Path.Combine(d2, secret.CredentialName)} does not exist" : "");
        return false;
    }

    /// <summary>Resolves or throws a PgStateException whose message holds no secret.</summary>
    public string Resolve(SecretReference secret) =>
        TryResolve(secret, out var value, out var error) ? value : throw new PgStateException(error!);

    private static bool ReadBounded(string path, out string value, out string? error)
    {
        value = "";
        error = null;
        try
        {
            var kind = Host.Posix.FileKind(path);
            if (kind is null)
            {
                error = "no such file";
                return false;
            }
            if (kind != Host.PosixFileKind.Regular)
            {
                error = "not a regular file";
                return false;
            }
            if (Host.Posix.Stat(path) is { Size: > SecretReference.MaxSecretBytes })
            {
                error = $"larger than {SecretReference.MaxSecretBytes / 1024} KB";
                return false;
            }
            value = Host.HostFiles.ReadBoundedText(path, SecretReference.MaxSecretBytes).TrimEnd('\r', '\n');
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            error = "permission denied";
            return false;
        }
        catch (IOException e)
        {
            error = e.GetType().Name;
            return false;
        }
    }
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
public sealed record HostManifest(ManifestDocument Document, string Name, ConnectionSpec Connection, Located<string>? DataDirectory, RestartSpec Restart)
{
    /// <summary>The document's spec, for modules to bind their own section from.</summary>
    public YamlMapping Spec => Document.Spec;

    internal static HostManifest Bind(ManifestDocument document, DiagnosticBag diagnostics)
    {
        var spec = document.Spec;
        var c = spec.Mapping("connection");
        var connection = new ConnectionSpec(
            c.String("host") ?? "/var/run/postgresql",
            c.Int32("port", diagnostics) ?? 5432,
            c.String("user") ?? "postgres",
            c.String("database") ?? "postgres",
            c.Secret("password"),
            c.Int32("connectTimeout", diagnostics) ?? 10);
        var r = spec.Mapping("restart");
        var restart = new RestartSpec(
            r.String("policy") == "allowed" ? RestartPolicy.Allowed : RestartPolicy.Never,
            r.String("service"),
            r.Sequence("command")?.Items.OfType<YamlScalar>().Select(s => s.Text).ToList(),
            r.String("logFile"),
            r.Duration("timeout", diagnostics)?.Value ?? TimeSpan.FromSeconds(60));
        return new HostManifest(document, document.HostName, connection, spec.LocatedString("dataDirectory"), restart);
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
