using System.Text;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Backups;

public sealed record DesiredBackup(
    string Name, string Schedule, string Destination, string Format, string Compression, string Checkpoint, string ManifestChecksums,
    string? User, SecretReference? Password, int? RetentionCount, TimeSpan? RetentionMaxAge, bool Verify, string Scheduler,
    SourcePosition? SchedulePosition)
{
    /// <summary>The restore drill the manifest declares for this backup (spec.backups[].drill), or null.</summary>
    public DesiredDrill? Drill { get; init; }

    /// <summary>pg_basebackup (pgstate takes the backup) or pgbackrest (pgstate runs pgbackrest backup with spec.pgbackrest's configuration).</summary>
    public string Tool { get; init; } = PgBaseBackup;

    /// <summary>For tool pgbackrest: full, diff or incr.</summary>
    public string? PgBackRestType { get; init; }

    public SourcePosition? ToolPosition { get; init; }

    public bool IsPgBackRest => Tool == PgBackRest;

    public const string PgBaseBackup = "pg_basebackup";

    public const string PgBackRest = "pgbackrest";
}

/// <summary>Where schedules go and what they run: the installed binary and a manifest path that does not depend on who planned.</summary>
public sealed record BackupScheduling(string UnitDirectory, string CronDirectory, string PgstatePath, string ManifestPath, SourcePosition? ManifestPosition);

/// <summary>spec.backups + spec.backupScheduling, bound.</summary>
public sealed record BackupsSection(IReadOnlyList<DesiredBackup> Backups, BackupScheduling Scheduling);

/// <summary>spec.backups: schedules as systemd units (or cron files) that run `pgstate backup run NAME`, and their health checks.</summary>
public sealed partial class BackupsModule : IModule, IVerbProvider
{
    public const string DefaultPgstatePath = "/usr/bin/pgstate";

    public string Name => BackupUnits.Module;

    public int Order => 70;

    public IBound? Bind(BindContext context)
    {
        var spec = context.Spec;
        var diagnostics = context.Diagnostics;
        if (spec.Sequence("backups") is null)
        {
            return null;
        }
        var backups = new List<DesiredBackup>();
        foreach (var b in spec.Mappings("backups"))
        {
            if (b.String("name") is not { } name || b.String("schedule") is not { } schedule || b.String("destination") is not { } destinationText)
            {
                continue;
            }
            if (backups.Any(x => x.Name == name))
            {
                diagnostics.Error(DiagnosticCodes.BackupTwice, $"backup {name} is listed twice", b.Position);
                continue;
            }
            var destination = destinationText.Length > 1 ? destinationText.TrimEnd('/') : destinationText;
            if (destination == "/" || destination.Split('/').Contains(".."))
            {
                diagnostics.Error(DiagnosticCodes.UnsafePath, $"backup {name}: {destination} cannot be a backup destination (retention removes directories there)", b["destination"]!.Position);
                continue;
            }
            var format = b.String("format") ?? "plain";
            var compression = b.String("compression") ?? "none";
            if (format == "plain" && compression != "none")
            {
                diagnostics.Error(DiagnosticCodes.CompressionNeedsTar, $"backup {name}: compression needs format: tar (a plain backup is a data directory)", b["compression"]!.Position);
            }
            // OnCalendar checked in-process with systemd's grammar (systemd's timers run in /etc/localtime).
            if (!PgState.Engine.Calendar.CalendarSpec.TryParse(schedule, PgState.Engine.Calendar.CalendarTimeZone.SystemDefault, out _, out var calendarError))
            {
                diagnostics.Error(DiagnosticCodes.BadSchedule, $"backup {name}: schedule \"{TextSafety.Printable(schedule)}\" is not a valid systemd OnCalendar expression ({calendarError})", b["schedule"]!.Position);
            }
            var scheduler = b.String("scheduler") ?? "systemd";
            if (scheduler == "cron" && BackupUnits.ToCron(schedule) is null)
            {
                diagnostics.Error(DiagnosticCodes.CronCannotSchedule, $"backup {name}: scheduler cron understands daily (\"*-*-* HH:MM:SS\") and weekly (\"Mon *-*-* HH:MM\") schedules; use systemd for \"{schedule}\"", b["schedule"]!.Position);
            }
            var tool = b.String("tool") ?? DesiredBackup.PgBaseBackup;
            var type = b.String("type");
            if (tool == DesiredBackup.PgBackRest && type is null)
            {
                diagnostics.Error(DiagnosticCodes.PgBackRestBackupNeedsSection, $"backup {name}: tool pgbackrest needs type (full, diff or incr)", b["tool"]!.Position);
            }
            else if (tool != DesiredBackup.PgBackRest && type is not null)
            {
                diagnostics.Error(DiagnosticCodes.PgBackRestBackupNeedsSection, $"backup {name}: type is for tool pgbackrest (pg_basebackup always takes a full backup)", b["type"]!.KeyOrPosition);
            }
            if (tool == DesiredBackup.PgBackRest && (b["format"] is { IsDefault: false } || b["compression"] is { IsDefault: false } || b["retention"] is not null))
            {
                diagnostics.Error(DiagnosticCodes.PgBackRestBackupNeedsSection, $"backup {name}: format, compression and retention of a pgbackrest backup are spec.pgbackrest's (compress, repositories[].retention)", b.Position);
            }
            var retention = b.Mapping("retention");
            var connection = b.Mapping("connection");
            var maxAge = retention.Duration("maxAge", diagnostics)?.Value;
            backups.Add(new DesiredBackup(name, schedule, destination, format, compression,
                b.String("checkpoint") ?? "fast", b.String("manifestChecksums") ?? "CRC32C",
                connection.String("user"), connection.Secret("password"),
                retention.Int32("count", diagnostics), maxAge,
                b.Bool("verify") ?? true, scheduler, b["schedule"]!.Position)
            {
                Drill = DrillBinder.Bind(b.Mapping("drill"), name, destination, scheduler, maxAge, context.Host.DataDirectory, diagnostics),
                Tool = tool,
                PgBackRestType = type,
                ToolPosition = b["tool"]?.Position ?? b.Position,
            });
            context.Facts.Publish(HostFacts.StorageDestinations, new StorageDestination($"backup destination of '{name}'", destination, b["destination"]!.Position));
            if (backups[^1].Drill is { } drill && drill.WorkDirectory != destination)
            {
                // The drill's server runs there: its label matters as much as the destination's.
                context.Facts.Publish(HostFacts.StorageDestinations, new StorageDestination($"drill work directory of '{name}'", drill.WorkDirectory, drill.WorkDirectoryPosition));
            }
        }
        var s = spec.Mapping("backupScheduling");
        var manifest = s.LocatedString("manifestPath");
        var scheduling = new BackupScheduling(
            s.String("unitDirectory") ?? context.Paths.UnitDirectory,
            s.String("cronDirectory") ?? context.Paths.CronDirectory,
            s.String("pgstatePath") ?? DefaultPgstatePath,
            manifest?.Value ?? Path.Combine(context.Paths.ConfigDirectory, context.Host.Name + ".yaml"),
            manifest?.Position);
        foreach (var (label, value) in new[] { ("pgstatePath", scheduling.PgstatePath), ("manifestPath", scheduling.ManifestPath), ("unitDirectory", scheduling.UnitDirectory), ("cronDirectory", scheduling.CronDirectory) })
        {
            // Written into unit files and cron lines: keep to characters both read as themselves.
            if (value.Any(c => c is '\'' or '"' or '\\' or '%' or '$' or '`' || char.IsWhiteSpace(c)))
            {
                diagnostics.Error(DiagnosticCodes.UnsafeSchedulePath, $"spec.backupScheduling.{label}: \"{TextSafety.Printable(value)}\" holds a quote, backslash, %, $, ` or space, which unit files and cron lines cannot carry safely", s?[label]?.Position ?? context.Host.Document.Root.Position);
            }
        }
        return new BoundBackups(context.Host, new BackupsSection(backups, scheduling));
    }

    public IReadOnlyList<Verb> Verbs { get; } =
    [
        new Verb(["backup", "run"], "Take the backup now: pg_basebackup -X stream into DEST/<UTC time>.partial, rename, pg_verifybackup, retention, status file. Run as root, its files belong to the data directory's owner.",
            [
                new VerbParameter("name", "The backup's name in spec.backups.", VerbParameterKind.Argument, HelpName: "NAME"),
                new VerbParameter("host", "The host (metadata.name) whose backup it is, when the manifests declare several.", VerbParameterKind.Option, HelpName: "HOST"),
                new VerbParameter("credentials-directory", "Where the job's secrets are (cron jobs; systemd sets $CREDENTIALS_DIRECTORY).", VerbParameterKind.Option, HelpName: "DIR"),
            ],
            VerbManifests.ManifestOption, BackupVerbs.RunAsync),
        new Verb(["backup", "verify"], "Verify a finished backup again with pg_verifybackup and record the result in the status file.",
            [
                new VerbParameter("name", "The backup's name in spec.backups.", VerbParameterKind.Argument, HelpName: "NAME"),
                new VerbParameter("host", "The host (metadata.name) whose backup it is, when the manifests declare several.", VerbParameterKind.Option, HelpName: "HOST"),
                new VerbParameter("backup", "The backup to verify (default: the newest).", VerbParameterKind.Option, HelpName: "DIR"),
            ],
            VerbManifests.ManifestOption, BackupVerbs.VerifyAsync),
        .. RestoreVerbs.All,
    ];
}

/// <summary>What is on the host: schedule files this host wrote, foreign files in the way, credentials, the job's identity.</summary>
internal sealed record BackupsLive(
    IReadOnlyList<ScheduleFile> Existing,
    IReadOnlyList<string> Foreign,
    IReadOnlyDictionary<string, string> Desired,
    IReadOnlyList<(string Path, byte[]? Current, byte[]? Wanted, string Owner)> Credentials,
    JobIdentity Job,
    IReadOnlyList<string> Warnings,
    IReadOnlyList<Diagnostic> DrillProblems);

internal sealed class BoundBackups(HostManifest host, BackupsSection section) : BoundModule<BackupsLive, UnitWrite>, IHealthChecks
{
    public override string Name => BackupUnits.Module;

    public IReadOnlyList<DesiredBackup> Backups => section.Backups;

    public BackupsSection Section => section;

    public HostManifest Host => host;

    public static bool SystemdRunning => Directory.Exists("/run/systemd/system");

    private const UnixFileMode CredentialMode = UnixFileMode.UserRead | UnixFileMode.GroupRead;

    /// <summary>Where this host's job credentials live: one directory per host, root's, readable by the job's group.</summary>
    public static string CredentialsDirectory(HostPaths paths, string host) => Path.Combine(paths.CredentialsDirectory, host);

    /// <summary>The OS user the server (and so the jobs) run as: the owner of the data directory.</summary>
    public static JobIdentity JobFor(string? dataDirectory)
    {
        if (dataDirectory is { Length: > 0 } d && Posix.Stat(d) is { } st && Posix.UserName(st.Uid) is { } user && user != "root")
        {
            return new JobIdentity(user, Posix.GroupName(st.Gid) ?? user);
        }
        return new JobIdentity("postgres", "postgres");
    }

    protected override async Task<BackupsLive> ReadLiveAsync(IHostSession session, CancellationToken cancellationToken)
    {
        var warnings = new List<string>();
        var job = JobFor(session.Server.DataDirectory.Length > 0 ? session.Server.DataDirectory : host.DataDirectory?.Value);
        var credentialsDir = CredentialsDirectory(session.Paths, host.Name);
        var secrets = section.Backups.Where(b => b.Password is not null).Select(b => b.Password!).DistinctBy(p => p.CredentialName).ToList();
        var desired = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var b in section.Backups)
        {
            var credentials = b.Password is { } p ? new[] { (p.CredentialName, Path.Combine(credentialsDir, p.CredentialName)) } : [];
            foreach (var (path, content) in BackupUnits.Render(host.Name, b, section.Scheduling, job, credentials, credentialsDir).Concat(BackupUnits.RenderDrill(host.Name, b, section.Scheduling, job)))
            {
                desired[path] = content;
            }
        }
        var existing = new List<ScheduleFile>();
        var foreign = new List<string>();
        foreach (var dir in new[] { section.Scheduling.UnitDirectory, section.Scheduling.CronDirectory }.Distinct().Where(Directory.Exists))
        {
            foreach (var file in BackupUnits.FilePatterns.SelectMany(pattern => Directory.EnumerateFiles(dir, pattern)))
            {
                if (Posix.Stat(file, followLinks: false) is not { Kind: PosixFileKind.Regular, Size: < 1024 * 1024 })
                {
                    continue;
                }
                var content = await File.ReadAllBytesAsync(file, cancellationToken);
                if (BackupUnits.WrittenFor(content, host.Name))
                {
                    existing.Add(new ScheduleFile(file, content));
                }
                else if (desired.ContainsKey(file))
                {
                    foreign.Add(file);
                }
            }
        }
        var credentialFiles = new List<(string, byte[]?, byte[]?, string)>();
        foreach (var secret in secrets)
        {
            var path = Path.Combine(credentialsDir, secret.CredentialName);
            byte[]? current = null;
            try
            {
                // Only a regular file, never a link (followed, it would read any file of the host as root): anything else is replaced.
                current = Posix.Stat(path, followLinks: false) is { Kind: PosixFileKind.Regular, Size: <= SecretReference.MaxSecretBytes }
                    ? HostFiles.ReadBounded(path, SecretReference.MaxSecretBytes, followLinks: false) : null;
            }
            catch (UnauthorizedAccessException)
            {
                warnings.Add($"cannot read {path} (permission denied): run pgstate as root to manage the backup jobs' credentials");
            }
            var wanted = session.Secrets.TryResolve(secret, out var value, out _) ? Encoding.UTF8.GetBytes(value) : null;
            if (wanted is null)
            {
                warnings.Add($"{secret.Describe()} is not available here: the credential the backup job reads ({path}) cannot be compared or written");
            }
            credentialFiles.Add((path, current, wanted, job.User));
        }
        if (section.Backups.Count > 0)
        {
            // Client tools against this server: an older pg_basebackup or pg_verifybackup fails at night, not now.
            foreach (var why in BackupChecks.ToolProblems(section, session))
            {
                warnings.Add($"backups will fail: {why}");
            }
            var pgstate = section.Scheduling.PgstatePath;
            if (Posix.Stat(pgstate) is not { Kind: PosixFileKind.Regular } st || (st.Mode & 0b001_001_001) == 0)
            {
                warnings.Add($"the schedules run {pgstate}, which is not an executable file on this host: install the pgstate package (or set spec.backupScheduling.pgstatePath)");
            }
            var manifest = section.Scheduling.ManifestPath;
            if (Posix.Stat(manifest) is not { Kind: PosixFileKind.Regular })
            {
                warnings.Add($"the schedules run with the manifest {manifest}, which does not exist on this host: put this manifest there (or set spec.backupScheduling.manifestPath)");
            }
            else if (Path.GetFullPath(manifest) != Path.GetFullPath(host.Document.File) && File.Exists(host.Document.File)
                && !HostFiles.ReadBounded(manifest, 16 * 1024 * 1024).AsSpan().SequenceEqual(HostFiles.ReadBounded(host.Document.File, 16 * 1024 * 1024)))
            {
                warnings.Add($"the schedules run with {manifest}, which differs from the manifest being planned ({host.Document.File}): the jobs will do what that file says");
            }
        }
        var dataDirectory = session.Server.DataDirectory.Length > 0 ? session.Server.DataDirectory : host.DataDirectory?.Value;
        var drillProblems = section.Backups.SelectMany(b => DrillLiveChecks.Check(b, dataDirectory, session.Facts)).ToList();
        return new BackupsLive(existing, foreign, desired, credentialFiles, job, warnings, drillProblems);
    }

    public override void CheckFacts(FactBag facts, DiagnosticBag diagnostics)
    {
        foreach (var b in section.Backups)
        {
            DrillBinder.CheckFacts(b, facts, diagnostics);
            if (b.IsPgBackRest && facts.One(HostFacts.PgBackRest) is null)
            {
                diagnostics.Error(DiagnosticCodes.PgBackRestBackupNeedsSection, $"backup {b.Name}: tool pgbackrest needs spec.pgbackrest (stanza, repositories)", b.ToolPosition);
            }
        }
    }

    protected override void ValidateLive(BackupsLive live, DiagnosticBag diagnostics)
    {
        diagnostics.AddRange(live.DrillProblems);
    }

    public override void Diff(BackupsLive live, Diff<UnitWrite> diff)
    {
        BackupUnits.Diff(host.Name, live.Desired, live.Existing, live.Foreign, SystemdRunning, diff);
        foreach (var (path, current, wanted, owner) in live.Credentials)
        {
            if (wanted is null)
            {
                continue;
            }
            var address = $"backups.credentials[{Path.GetFileName(path)}]";
            if (current is null)
            {
                diff.Add(address, ChangeAction.Create, null, path, Activation.None, new UnitWrite(path, wanted, null, CredentialMode, owner),
                    "read by the backup job (LoadCredential= or --credentials-directory); root's, mode 0440 for the job's group", sensitive: true);
            }
            else if (!current.AsSpan().SequenceEqual(wanted))
            {
                diff.Add(address, ChangeAction.Update, path, path, Activation.None, new UnitWrite(path, wanted, null, CredentialMode, owner), "the secret changed", sensitive: true);
            }
        }
        foreach (var warning in live.Warnings)
        {
            diff.Warn(null, warning);
        }
    }

    public override string Digest(BackupsLive live) =>
        BackupUnits.Digest(live.Existing) + "|" + string.Join(';', live.Credentials.Select(c => $"{c.Path}:{(c.Current is null ? "-" : Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(c.Current)))}"));

    protected override async Task<string?> ApplyAsync(IHostSession session, PlannedChange<UnitWrite> change, CancellationToken cancellationToken)
    {
        var write = change.Payload;
        var p = session.Processes;
        if (write.Content is null)
        {
            if (Posix.Stat(write.Path, followLinks: false) is { } && !BackupUnits.WrittenFor(await File.ReadAllBytesAsync(write.Path, cancellationToken), host.Name))
            {
                throw new PgStateException($"{write.Path} was not written by pgstate for host {host.Name}; left alone");
            }
            if (write.TimerToEnable is { } gone)
            {
                await p.RunAsync("systemctl", ["disable", "--now", "--", gone], check: false, cancellationToken: cancellationToken);
            }
            File.Delete(write.Path);
        }
        else
        {
            var directory = Path.GetDirectoryName(write.Path)!;
            if (write.Owner is { } owner)
            {
                // A credential: root's file in root's directory, readable by the job's group (a cron job reads it as
                // its user, systemd's LoadCredential= as root). The job's user can read it, never replace it or plant a link.
                var user = Posix.User(owner) ?? throw new PgStateException($"no user '{owner}' on this host to read {write.Path}");
                Directory.CreateDirectory(directory);
                if (Posix.IsRoot)
                {
                    Posix.SetDirectoryOwnerAndMode(directory, 0, user.Gid, 0b111_101_000);
                }
                await HostFiles.ReplaceAsync(write.Path, write.Content, cancellationToken, write.Mode, (0, user.Gid), followLinks: false, keepExisting: false);
                return null;
            }
            if (File.Exists(write.Path) && !BackupUnits.WrittenFor(await File.ReadAllBytesAsync(write.Path, cancellationToken), host.Name))
            {
                throw new PgStateException($"{write.Path} exists and was not written by pgstate for host {host.Name}; refusing to overwrite it");
            }
            Directory.CreateDirectory(directory);
            await HostFiles.ReplaceAsync(write.Path, write.Content, cancellationToken, write.Mode);
        }
        if (write.Owner is not null)
        {
            return null;
        }
        if (!SystemdRunning)
        {
            return write.Path.EndsWith(".timer", StringComparison.Ordinal) ? $"{write.Path} written; not active (systemd is not PID 1)" : null;
        }
        await p.RunAsync("systemctl", ["daemon-reload"], cancellationToken: cancellationToken);
        if (write.Content is not null && write.TimerToEnable is { } timer)
        {
            await p.RunAsync("systemctl", ["enable", "--now", "--", timer], cancellationToken: cancellationToken);
            return $"{timer} enabled and started";
        }
        return null;
    }

    public async Task<IReadOnlyList<CheckResult>> CheckAsync(IHostSession session, CheckOptions options, CancellationToken cancellationToken) =>
        [.. await BackupChecks.CheckAsync(this, session, cancellationToken), .. await DrillChecks.CheckAsync(this, session, cancellationToken)];
}
