using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.PgBackRest;

/// <summary>What a pgbackrest change writes: the configuration file (Content) or the stanza (stanza-create when info says it is missing).</summary>
public sealed record PgBackRestWrite(string Kind, byte[]? Content)
{
    public const string Config = "config";
    public const string Stanza = "stanza";
}

/// <summary>The configuration file on disk, the rendered one, and whether each posix repository holds the stanza.</summary>
internal sealed record PgBackRestLive(
    byte[]? Existing,
    bool Foreign,
    RenderedConfig? Desired,
    IReadOnlyList<(PgBackRestRepository Repository, bool HasStanza)> PosixStanzas,
    string User,
    string Group,
    IReadOnlyList<string> Warnings);

internal sealed partial class BoundPgBackRest(HostManifest host, PgBackRestSection section) : BoundModule<PgBackRestLive, PgBackRestWrite>, IHealthChecks
{
    public override string Name => PgBackRestModule.Module;

    public PgBackRestSection Section => section;

    /// <summary>The OS user pgBackRest runs as: the data directory's owner (the server's user).</summary>
    public static (string User, string Group) JobFor(string? dataDirectory) =>
        dataDirectory is { Length: > 0 } d && Posix.Stat(d) is { } st && Posix.UserName(st.Uid) is { } user && user != "root"
            ? (user, Posix.GroupName(st.Gid) ?? user)
            : ("postgres", "postgres");

    private string? DataDirectory(IHostSession session) => session.Server.DataDirectory.Length > 0 ? session.Server.DataDirectory : host.DataDirectory?.Value;

    protected override async Task<PgBackRestLive> ReadLiveAsync(IHostSession session, CancellationToken cancellationToken)
    {
        var warnings = new List<string>();
        var (user, group) = JobFor(DataDirectory(session));
        byte[]? existing = null;
        var foreign = false;
        var path = section.ConfigPath;
        try
        {
            if (Posix.Stat(path) is { Kind: PosixFileKind.Regular, Size: < 1024 * 1024 } st)
            {
                existing = await File.ReadAllBytesAsync(path, cancellationToken);
                foreign = !PgBackRestConfig.WrittenFor(existing, host.Name);
                if (Posix.User(user) is { } job && !ReadableBy(st, job.Uid, Posix.Group(group) ?? job.Gid))
                {
                    // archive-push (the server) and the backup jobs run as that user: they would fail on every segment.
                    warnings.Add($"{path} is not readable by {user} (owner uid {st.Uid}, mode {Convert.ToString(st.Mode & 0xFFF, 8)}): archive-push and the backup jobs run as {user}; chown {user}: or chmod g+r it");
                }
            }
            else if (Posix.Stat(path) is { } other)
            {
                foreign = true;
                warnings.Add($"{path} is a {other.Kind.ToString().ToLowerInvariant()} or larger than 1 MB, not a configuration file pgstate wrote");
            }
        }
        catch (UnauthorizedAccessException)
        {
            warnings.Add($"cannot read {path} (permission denied): run pgstate as root to manage the pgBackRest configuration");
        }
        var values = new Dictionary<SecretReference, string>();
        foreach (var secret in section.Secrets)
        {
            if (session.Secrets.TryResolve(secret, out var value, out _))
            {
                values[secret] = value;
            }
            else
            {
                warnings.Add($"{secret.Describe()} is not available here: {path} holds it, so the file cannot be compared or written");
            }
        }
        var desired = values.Count == section.Secrets.Count()
            ? PgBackRestConfig.Render(host, section, session.Server.DataDirectory.Length > 0 ? session.Server.DataDirectory : host.DataDirectory?.Value, values)
            : null;
        if (desired?.Problem is { } problem)
        {
            warnings.Add(problem);
            desired = null;
        }
        var stanzas = section.Repositories.Where(r => r.Type == "posix")
            .Select(r => (r, File.Exists(Path.Combine(r.Path, "archive", section.Stanza, "archive.info")) && File.Exists(Path.Combine(r.Path, "backup", section.Stanza, "backup.info"))))
            .ToList();
        return new PgBackRestLive(existing, foreign, desired, stanzas, user, group, warnings);
    }

    private static bool ReadableBy(PosixStat st, uint uid, uint gid) =>
        (st.Uid == uid && (st.Mode & 0b100_000_000) != 0) || (st.Gid == gid && (st.Mode & 0b000_100_000) != 0) || (st.Mode & 0b000_000_100) != 0;

    public override void Diff(PgBackRestLive live, Diff<PgBackRestWrite> diff)
    {
        const string address = "pgbackrest.config";
        var path = section.ConfigPath;
        var configChanges = false;
        var configUsable = !live.Foreign && live.Desired is not null;
        if (live.Foreign)
        {
            diff.Warn(address, $"{path} exists and was not written by pgstate for host {host.Name}: pgstate leaves it alone; move it away (or set spec.pgbackrest.configPath) to let pgstate write it");
        }
        else if (live.Desired is { } desired)
        {
            var bytes = Encoding.UTF8.GetBytes(desired.Text);
            if (live.Existing is null)
            {
                diff.Add(address, ChangeAction.Create, null, path, Activation.None, new PgBackRestWrite(PgBackRestWrite.Config, bytes),
                    $"mode 0640, owned by {live.User}:{live.Group}");
                configChanges = true;
            }
            else if (!live.Existing.AsSpan().SequenceEqual(bytes))
            {
                var (before, after) = PgBackRestConfig.FirstDifference(PgBackRestConfig.MaskSecrets(Encoding.UTF8.GetString(live.Existing)), desired.Masked);
                diff.Add(address, ChangeAction.Update, before, after, Activation.None, new PgBackRestWrite(PgBackRestWrite.Config, bytes),
                    before == after ? $"{path} differs from the rendered file in a secret" : $"{path} differs from the rendered file");
                configChanges = true;
            }
        }
        var missing = live.PosixStanzas.Where(s => !s.HasStanza).Select(s => $"repo{s.Repository.Index} {s.Repository.Path}").ToList();
        // stanza-create reads the configuration: only with the one pgstate writes (or wrote).
        if (configUsable && (missing.Count > 0 || (live.PosixStanzas.Count == 0 && configChanges)))
        {
            diff.Add($"pgbackrest.stanza.{section.Stanza}", ChangeAction.Create, null,
                missing.Count > 0 ? $"stanza {section.Stanza} in {string.Join(", ", missing)}" : $"stanza {section.Stanza}",
                Activation.None, new PgBackRestWrite(PgBackRestWrite.Stanza, null), "pgbackrest stanza-create, when pgbackrest info says the stanza is missing");
        }
        foreach (var warning in live.Warnings)
        {
            diff.Warn(null, warning);
        }
    }

    public override string Digest(PgBackRestLive live) =>
        (live.Existing is null ? "-" : Convert.ToHexStringLower(SHA256.HashData(live.Existing))) + "|" + live.Foreign + "|" +
        string.Join(';', live.PosixStanzas.Select(s => $"{s.Repository.Path}:{s.HasStanza}"));

    protected override async Task<string?> ApplyAsync(IHostSession session, PlannedChange<PgBackRestWrite> change, CancellationToken cancellationToken)
    {
        var (user, group) = JobFor(DataDirectory(session));
        var owner = Posix.User(user) is { } u ? (u.Uid, Posix.Group(group) ?? u.Gid) : ((uint, uint)?)null;
        var write = change.Payload;
        if (write.Kind == PgBackRestWrite.Config)
        {
            var path = section.ConfigPath;
            if (File.Exists(path) && !PgBackRestConfig.WrittenFor(await File.ReadAllBytesAsync(path, cancellationToken), host.Name))
            {
                throw new PgStateException($"{path} exists and was not written by pgstate for host {host.Name}; refusing to overwrite it");
            }
            var directory = Path.GetDirectoryName(path)!;
            if (!Directory.Exists(directory))
            {
                Directory.CreateDirectory(directory);
                File.SetUnixFileMode(directory, (UnixFileMode)0b111_101_101);
            }
            // Mode 0640 and the job's user: it may hold the repository's cipher pass; kept as they are when the file exists.
            await HostFiles.ReplaceAsync(path, write.Content!, cancellationToken, (UnixFileMode)0b110_100_000, owner);
            return null;
        }
        foreach (var repo in section.Repositories.Where(r => r.Type == "posix" && !Directory.Exists(r.Path)))
        {
            // Made like every directory pgstate makes: its path walked without following another user's link, owner and mode on what was opened.
            using var made = Posix.OpenDirectoryNoLinks(HostFiles.ResolveLinks(repo.Path), create: true, mode: 0b111_101_000);
            if (owner is { } o && Posix.IsRoot)
            {
                Posix.SetOwnerAndMode(made, o.Item1, o.Item2, 0b111_101_000);
            }
        }
        var cli = new PgBackRestCli(section.ConfigPath, section.Stanza, user, session.Processes);
        var info = await cli.InfoAsync(section.CheckTimeout, cancellationToken);
        if (!info.StanzaMissing)
        {
            return $"stanza {section.Stanza} already exists ({info.StatusMessage})";
        }
        var result = await cli.RunAsync("stanza-create", [], TimeSpan.FromMinutes(10), cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new PgStateException($"pgbackrest stanza-create exited with code {result.ExitCode}: {PgBackRestCli.Message(result)}");
        }
        return $"stanza {section.Stanza} created";
    }

    public async Task<IReadOnlyList<CheckResult>> CheckAsync(IHostSession session, CheckOptions options, CancellationToken cancellationToken)
    {
        var (user, _) = JobFor(DataDirectory(session));
        var cli = new PgBackRestCli(section.ConfigPath, section.Stanza, user, session.Processes);
        var results = new List<CheckResult>();
        var started = DateTime.UtcNow;
        try
        {
            // --archive-timeout bounds pgBackRest's own wait for the switched segment; the process timeout bounds the rest.
            var seconds = Math.Max(1, (int)section.CheckTimeout.TotalSeconds);
            var result = await cli.RunAsync("check", ["--archive-timeout=" + seconds.ToString(CultureInfo.InvariantCulture)], section.CheckTimeout + TimeSpan.FromSeconds(30), cancellationToken);
            var elapsed = (DateTime.UtcNow - started).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture);
            results.Add(result.ExitCode == 0
                ? new CheckResult("pgbackrest:check", CheckStatus.Ok, $"pgbackrest check of stanza {section.Stanza} passed in {elapsed} s (archive-push works, the repository is readable)", $"{elapsed} s")
                : new CheckResult("pgbackrest:check", CheckStatus.Fail, $"pgbackrest check of stanza {section.Stanza} failed (exit {result.ExitCode}): {PgBackRestCli.Message(result)}"));
        }
        catch (PgStateException e)
        {
            results.Add(new CheckResult("pgbackrest:check", CheckStatus.Fail, $"pgbackrest check of stanza {section.Stanza}: {e.Message}"));
        }
        try
        {
            var info = await cli.InfoAsync(section.CheckTimeout, cancellationToken);
            results.Add(info.StatusCode switch
            {
                0 => new CheckResult("pgbackrest:stanza", CheckStatus.Ok, $"stanza {section.Stanza}: {info.Backups.Count} backup(s), WAL {info.ArchiveMin ?? "-"} … {info.ArchiveMax ?? "-"}"),
                2 => new CheckResult("pgbackrest:stanza", CheckStatus.Warn, $"stanza {section.Stanza} has no valid backup yet"),
                _ => new CheckResult("pgbackrest:stanza", CheckStatus.Fail, $"stanza {section.Stanza}: {info.StatusMessage} (pgbackrest info status {info.StatusCode})"),
            });
        }
        catch (PgStateException e)
        {
            results.Add(new CheckResult("pgbackrest:stanza", CheckStatus.Fail, e.Message));
        }
        if (section.VerifyTimeout is { } verifyTimeout)
        {
            results.Add(await VerifyAsync(cli, verifyTimeout, cancellationToken));
        }
        return results;
    }

    /// <summary>pgbackrest verify: every file of every backup and every WAL segment in the repository readable, no gap in the archive.</summary>
    private async Task<CheckResult> VerifyAsync(PgBackRestCli cli, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        try
        {
            var result = await cli.RunAsync("verify", ["--output=text"], timeout, cancellationToken);
            var elapsed = (DateTime.UtcNow - started).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture);
            var text = (result.StandardOutput + "\n" + result.StandardError).Trim();
            // pgBackRest reports what it found wrong (missing, invalid or checksum-failed files) in its summary.
            var problems = VerifyProblems().Matches(text).Where(m => m.Groups[2].Value != "0").Select(m => m.Value).ToList();
            return result.ExitCode == 0 && problems.Count == 0
                ? new CheckResult("pgbackrest:verify", CheckStatus.Ok, $"pgbackrest verify of stanza {section.Stanza} passed in {elapsed} s (backups and WAL complete and readable)", $"{elapsed} s")
                : new CheckResult("pgbackrest:verify", CheckStatus.Fail, $"pgbackrest verify of stanza {section.Stanza} found problems (exit {result.ExitCode}): " +
                    (problems.Count > 0 ? string.Join("; ", problems.Distinct()) + "; " : "") + PgBackRestCli.Message(result));
        }
        catch (PgStateException e)
        {
            return new CheckResult("pgbackrest:verify", CheckStatus.Fail, $"pgbackrest verify of stanza {section.Stanza}: {e.Message}");
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"(missing|checksum invalid|size invalid|other)[^:\n]*: ?([0-9]+)")]
    private static partial System.Text.RegularExpressions.Regex VerifyProblems();
}
