using System.Globalization;
using System.Text.RegularExpressions;
using PgState.Engine.Diagnostics;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.PgBackRest;

/// <summary>One option of pgbackrest.conf: its value, or the secret it comes from (resolved when rendered).</summary>
public sealed record PgBackRestOption(string Key, string? Value, SecretReference? Secret = null);

/// <summary>spec.pgbackrest.repositories[i]: repoN-* options.</summary>
public sealed record PgBackRestRepository(int Index, string Type, string Path, IReadOnlyList<PgBackRestOption> Options, SourcePosition Position);

/// <summary>spec.pgbackrest, bound.</summary>
public sealed record PgBackRestSection(
    string Stanza,
    string ConfigPath,
    IReadOnlyList<PgBackRestRepository> Repositories,
    IReadOnlyList<PgBackRestOption> Global,
    TimeSpan CheckTimeout,
    TimeSpan? VerifyTimeout,
    string ManifestPath,
    SourcePosition Position)
{
    public IEnumerable<SecretReference> Secrets =>
        Repositories.SelectMany(r => r.Options).Concat(Global).Where(o => o.Secret is not null).Select(o => o.Secret!).Distinct();
}

/// <summary>
/// spec.pgbackrest: the pgBackRest configuration file pgstate owns (rendered, diffed as text,
/// written atomically), the stanza (created once, when pgbackrest info says it is missing) and the
/// health checks (pgbackrest check within a bounded time). archive_command stays the archiving
/// module's: both name the stanza, and CheckFacts there refuses two different ones.
/// </summary>
public sealed partial class PgBackRestModule : IModule, IRecoveringModule
{
    /// <summary>A run killed while writing the configuration leaves its temporary file (which may hold the cipher pass) beside it: removed.</summary>
    public Task<IReadOnlyList<string>> RecoverAsync(PgState.Engine.Host.IHostSession session, IBound? bound, CancellationToken cancellationToken) =>
        Task.FromResult(bound is BoundPgBackRest b
            ? PgState.Engine.Host.HostFiles.RemoveStaleTemporaries(Path.GetDirectoryName(PgState.Engine.Host.HostFiles.ResolveLinks(b.Section.ConfigPath))!)
            : (IReadOnlyList<string>)[]);

    public const string Module = "pgbackrest";

    public const string DefaultConfigPath = "/etc/pgbackrest/pgbackrest.conf";

    /// <summary>Options pgstate renders from typed fields: spec.pgbackrest.options may not set them a second time.</summary>
    private static readonly string[] Managed = ["stanza", "config", "config-path", "config-include-path"];

    /// <summary>
    /// What spec.pgbackrest.options cannot carry: a secret (it would sit in the manifest and show in plans: the typed
    /// fields take it from the environment or a file), a repository's path or type (repositories[] is where a repository is
    /// declared and checked: a repoN-path there could point into the data directory), the spool path archiveAsync checks.
    /// </summary>
    private static string? PassThroughProblem(string key) =>
        key.Contains("pass", StringComparison.Ordinal) || key.Contains("secret", StringComparison.Ordinal) || key.Contains("token", StringComparison.Ordinal)
            || key.EndsWith("-key", StringComparison.Ordinal)
            ? "looks like a secret: give it through a typed field (repositories[].cipher.pass, s3.key, s3.keySecret) from the environment or a file, never in the manifest"
        : System.Text.RegularExpressions.Regex.IsMatch(key, @"\Arepo[0-9]*-(path|type)\z")
            ? "declare the repository in spec.pgbackrest.repositories (its path is checked there; repo-path is repo1-path to pgBackRest, twice in one file it refuses the file)"
        : key == "recovery-option"
            ? "drills and restores write their own recovery settings (restore_command, the target); an option here would change what a drill proves"
        : key == "spool-path"
            ? "archiveAsync.spoolPath sets it (and checks it is outside the data directory)"
        : null;

    public string Name => Module;

    /// <summary>Before archiving (50): the configuration and the stanza exist before archive_command names them.</summary>
    public int Order => 45;

    public IBound? Bind(BindContext context)
    {
        if (context.Spec.Mapping("pgbackrest") is not { } p)
        {
            return null;
        }
        var diagnostics = context.Diagnostics;
        var errorsBefore = diagnostics.ErrorCount;
        var stanza = p.LocatedString("stanza");
        if (stanza is { } s && !StanzaName().IsMatch(s.Value))
        {
            diagnostics.Error(DiagnosticCodes.PgBackRestBadStanza,
                $"spec.pgbackrest.stanza: \"{TextSafety.Printable(s.Value)}\" is not a stanza name pgBackRest accepts (letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64)", s.Position);
        }
        var configPath = p.LocatedString("configPath");
        if (configPath is { } c && (c.Value.EndsWith('/') || c.Value.Split('/').Contains("..") || c.Value.Any(char.IsWhiteSpace) || c.Value.Contains('\'') || c.Value.Contains('%')))
        {
            diagnostics.Error(DiagnosticCodes.UnsafePath, $"spec.pgbackrest.configPath: \"{TextSafety.Printable(c.Value)}\" must be a file path without '..', spaces, quotes or %", c.Position);
        }
        var dataDirectory = context.Host.DataDirectory?.Value.TrimEnd('/');
        var repositories = new List<PgBackRestRepository>();
        foreach (var r in p.Mappings("repositories"))
        {
            if (BindRepository(r, repositories.Count + 1, dataDirectory, diagnostics) is { } repo)
            {
                repositories.Add(repo);
                if (repo.Type == "posix")
                {
                    // archive-push runs in the server's SELinux domain and writes here: its label matters.
                    context.Facts.Publish(HostFacts.StorageDestinations, new StorageDestination($"pgBackRest repository repo{repo.Index}", repo.Path, r["path"]!.Position));
                }
            }
        }
        var global = new List<PgBackRestOption>();
        foreach (var repo in repositories)
        {
            global.AddRange(repo.Options);
        }
        if (p.Int32("processMax", diagnostics) is { } processMax)
        {
            if (processMax > Environment.ProcessorCount)
            {
                diagnostics.Error(DiagnosticCodes.PgBackRestProcessMax,
                    $"spec.pgbackrest.processMax: {processMax} processes on a host with {Environment.ProcessorCount} cores; more processes than cores only slow the backup and the server down", p["processMax"]!.Position);
            }
            global.Add(new("process-max", processMax.ToString(CultureInfo.InvariantCulture)));
        }
        if (p.Mapping("compress") is { } compress)
        {
            if (compress.String("type") is { } type)
            {
                global.Add(new("compress-type", type));
            }
            if (compress.Int32("level", diagnostics) is { } level)
            {
                global.Add(new("compress-level", level.ToString(CultureInfo.InvariantCulture)));
            }
        }
        if (p.Mapping("archiveAsync") is { } async && async.Bool("enabled") is true)
        {
            global.Add(new("archive-async", "y"));
            if (async.LocatedString("spoolPath") is { } spool)
            {
                if (IsInside(spool.Value, dataDirectory))
                {
                    diagnostics.Error(DiagnosticCodes.PgBackRestPathInData, $"spec.pgbackrest.archiveAsync.spoolPath: {spool.Value} is inside the data directory {dataDirectory}", spool.Position);
                }
                global.Add(new("spool-path", spool.Value.TrimEnd('/')));
                context.Facts.Publish(HostFacts.StorageDestinations, new StorageDestination("pgBackRest spool path", spool.Value.TrimEnd('/'), spool.Position));
            }
        }
        if (p.Bool("startFast") is { } startFast)
        {
            global.Add(new("start-fast", startFast ? "y" : "n"));
        }
        if (p.Mapping("options") is { } options)
        {
            foreach (var node in options.Values)
            {
                var key = node.Key!;
                if (OptionKey().IsMatch(key) && PassThroughProblem(key) is { } problem)
                {
                    diagnostics.Error(DiagnosticCodes.PgBackRestBadOption, $"spec.pgbackrest.options.{key}: {problem}", node.KeyOrPosition);
                    continue;
                }
                if (!OptionKey().IsMatch(key) || Managed.Contains(key) || key.StartsWith("pg", StringComparison.Ordinal) || global.Any(o => o.Key == key))
                {
                    diagnostics.Error(DiagnosticCodes.PgBackRestBadOption,
                        $"spec.pgbackrest.options.{TextSafety.Printable(key)}: " + (OptionKey().IsMatch(key)
                            ? "this option comes from a typed field of spec.pgbackrest (repositories, processMax, compress, archiveAsync, startFast, stanza) or from spec.connection and dataDirectory"
                            : "not an option name (lower-case letters, digits and '-')"), node.KeyOrPosition);
                    continue;
                }
                if (node is YamlScalar { IsNull: false } scalar)
                {
                    var value = scalar.ScalarText();
                    if (value != value.Trim() || value.Length == 0)
                    {
                        diagnostics.Error(DiagnosticCodes.PgBackRestBadOption, $"spec.pgbackrest.options.{key}: pgBackRest trims values; give it without surrounding spaces", scalar.Position);
                        continue;
                    }
                    global.Add(new(key, scalar.Kind == ScalarKind.Boolean ? (scalar.AsBoolean == true ? "y" : "n") : value));
                }
            }
        }
        var timeout = p.Duration("checkTimeout", diagnostics)?.Value ?? TimeSpan.FromMinutes(2);
        TimeSpan? verify = p.Bool("verify") == true ? p.Duration("verifyTimeout", diagnostics)?.Value ?? TimeSpan.FromHours(1) : null;
        if (diagnostics.ErrorCount > errorsBefore || stanza is null || repositories.Count == 0)
        {
            return null;
        }
        var section = new PgBackRestSection(stanza.Value.Value, configPath?.Value ?? DefaultConfigPath, repositories, global, timeout, verify,
            context.Spec.Mapping("backupScheduling").String("manifestPath") ?? context.Host.Document.File, p.Position);
        context.Facts.Publish(HostFacts.PgBackRest, new PgBackRestFact(section.Stanza, section.ConfigPath, stanza.Value.Position));
        return new BoundPgBackRest(context.Host, section);
    }

    private static PgBackRestRepository? BindRepository(YamlMapping r, int index, string? dataDirectory, DiagnosticBag diagnostics)
    {
        var prefix = $"repo{index}-";
        var type = r.String("type") ?? "posix";
        if (type is not ("posix" or "s3" or "sftp"))
        {
            // The schema names the allowed values; this names the field too, in case the schema was bypassed.
            diagnostics.Error(DiagnosticCodes.PgBackRestRepoType, $"spec.pgbackrest.repositories[{index - 1}].type: unknown repository type \"{TextSafety.Printable(type)}\" (posix, s3 or sftp)", r["type"]?.Position ?? r.Position);
            return null;
        }
        var path = r.LocatedString("path");
        if (path is null)
        {
            return null; // the schema requires it
        }
        var repoPath = path.Value.Value.Length > 1 ? path.Value.Value.TrimEnd('/') : path.Value.Value;
        if (type == "posix" && (IsInside(repoPath, dataDirectory) || (dataDirectory is not null && IsInside(dataDirectory, repoPath))))
        {
            diagnostics.Error(DiagnosticCodes.PgBackRestPathInData,
                $"spec.pgbackrest.repositories[{index - 1}].path: {repoPath} and the data directory {dataDirectory} overlap; a backup would copy the repository into itself and a restore would wipe it", path.Value.Position);
        }
        if (repoPath == "/" || repoPath.Split('/').Contains(".."))
        {
            diagnostics.Error(DiagnosticCodes.UnsafePath, $"spec.pgbackrest.repositories[{index - 1}].path: {repoPath} cannot be a repository", path.Value.Position);
        }
        List<PgBackRestOption> options = [new(prefix + "type", type), new(prefix + "path", repoPath)];
        if (r.Mapping("retention") is { } retention)
        {
            foreach (var (field, key) in new[] { ("full", "retention-full"), ("diff", "retention-diff"), ("archive", "retention-archive") })
            {
                if (retention.Int32(field, diagnostics) is { } count)
                {
                    if (count < 1)
                    {
                        diagnostics.Error(DiagnosticCodes.PgBackRestRetention,
                            $"spec.pgbackrest.repositories[{index - 1}].retention.{field}: {count} would keep no backup (pgBackRest needs at least 1)", retention[field]!.Position);
                        continue;
                    }
                    options.Add(new(prefix + key, count.ToString(CultureInfo.InvariantCulture)));
                }
            }
            if (retention.String("archiveType") is { } archiveType)
            {
                options.Add(new(prefix + "retention-archive-type", archiveType));
            }
            if (retention["full"] is null)
            {
                // Without repoN-retention-full, pgBackRest warns on every backup and expires nothing.
                diagnostics.Warning(DiagnosticCodes.PgBackRestRetention, $"spec.pgbackrest.repositories[{index - 1}].retention: no full count, so pgBackRest expires no backup", retention.Position);
            }
        }
        if (r.Mapping("cipher") is { } cipher)
        {
            options.Add(new(prefix + "cipher-type", cipher.String("type") ?? "aes-256-cbc"));
            if (cipher.Secret("pass") is { } pass)
            {
                options.Add(new(prefix + "cipher-pass", null, pass));
            }
        }
        if (r.Mapping("s3") is { } s3)
        {
            if (type != "s3")
            {
                diagnostics.Error(DiagnosticCodes.PgBackRestRepoType, $"spec.pgbackrest.repositories[{index - 1}].s3 is for type s3 (this one is {type})", r["s3"]!.KeyOrPosition);
            }
            foreach (var (field, key) in new[] { ("bucket", "s3-bucket"), ("endpoint", "s3-endpoint"), ("region", "s3-region"), ("uriStyle", "s3-uri-style") })
            {
                if (s3.String(field) is { } v)
                {
                    options.Add(new(prefix + key, v));
                }
            }
            if (s3.Secret("key") is { } key1)
            {
                options.Add(new(prefix + "s3-key", null, key1));
            }
            if (s3.Secret("keySecret") is { } key2)
            {
                options.Add(new(prefix + "s3-key-secret", null, key2));
            }
        }
        else if (type == "s3")
        {
            diagnostics.Error(DiagnosticCodes.PgBackRestRepoType, $"spec.pgbackrest.repositories[{index - 1}]: type s3 needs s3 (bucket, endpoint, region, key, keySecret)", r.Position);
        }
        if (r.Mapping("sftp") is { } sftp)
        {
            if (type != "sftp")
            {
                diagnostics.Error(DiagnosticCodes.PgBackRestRepoType, $"spec.pgbackrest.repositories[{index - 1}].sftp is for type sftp (this one is {type})", r["sftp"]!.KeyOrPosition);
            }
            foreach (var (field, key) in new[] { ("host", "sftp-host"), ("user", "sftp-host-user"), ("privateKeyFile", "sftp-private-key-file"), ("hostKeyHashType", "sftp-host-key-hash-type") })
            {
                if (sftp.String(field) is { } v)
                {
                    options.Add(new(prefix + key, v));
                }
            }
        }
        else if (type == "sftp")
        {
            diagnostics.Error(DiagnosticCodes.PgBackRestRepoType, $"spec.pgbackrest.repositories[{index - 1}]: type sftp needs sftp (host, user, privateKeyFile)", r.Position);
        }
        return new PgBackRestRepository(index, type, repoPath, options, r.Position);
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="directory"/> or below it.</summary>
    internal static bool IsInside(string path, string? directory)
    {
        if (directory is not { Length: > 0 })
        {
            return false;
        }
        var p = path.TrimEnd('/') + "/";
        var d = directory.TrimEnd('/') + "/";
        return p.StartsWith(d, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\z")]
    private static partial Regex StanzaName();

    [GeneratedRegex(@"^[a-z][a-z0-9-]{0,63}\z")]
    private static partial Regex OptionKey();
}
