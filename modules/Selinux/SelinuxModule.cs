using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Selinux;

public sealed record DesiredDirectory(string Path, string Owner, string Group, int Mode, SourcePosition Position);

public sealed record DesiredContext(FileContextEntry Entry, bool Present);

/// <summary>spec.directories and spec.selinux, bound.</summary>
public sealed record SelinuxSection(
    IReadOnlyList<DesiredDirectory> Directories,
    IReadOnlyList<DesiredContext> Contexts,
    IReadOnlyList<string> Relabel,
    bool Required,
    bool ManageLabelsWhenDisabled);

/// <summary>A directory as it is.</summary>
public sealed record LiveDirectory(string Path, string Owner, string Group, int Mode);

/// <summary>What one change does on apply.</summary>
public abstract record SelinuxAction;

public sealed record EnsureDirectory(DesiredDirectory Desired, bool Create) : SelinuxAction;

public sealed record SemanageFcontext(string Verb, FileContextEntry Entry) : SelinuxAction;

public sealed record Relabel(string Root) : SelinuxAction;

/// <summary>
/// spec.directories and spec.selinux: directories with owner and mode, SELinux file-context rules
/// (semanage fcontext), and the labels of the files under managed paths (restorecon / setfiles).
/// </summary>
public sealed partial class SelinuxModule : IModule
{
    /// <summary>Directories pgstate never creates, chowns or chmods: a typo here would break a host.</summary>
    public static readonly string[] ProtectedDirectories =
    [
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin",
        "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/var", "/var/lib", "/var/log", "/var/tmp",
    ];

    public string Name => SelinuxDiff.Module;

    // Before archiving: the archive directory and its label exist before archive_command points at it.
    public int Order => 20;

    public IBound? Bind(BindContext context)
    {
        var spec = context.Spec;
        var diagnostics = context.Diagnostics;
        var directories = new List<DesiredDirectory>();
        foreach (var d in spec.Mappings("directories"))
        {
            if (d.String("path") is not { } raw)
            {
                continue;
            }
            var path = raw.Length > 1 ? raw.TrimEnd('/') : raw;
            var position = d["path"]!.Position;
            if (ProtectedDirectories.Contains(path, StringComparer.Ordinal) || path.Split('/').Contains(".."))
            {
                diagnostics.Error(DiagnosticCodes.UnsafePath, $"spec.directories: pgstate does not manage {path} (a system directory, or a path with ..): name the directory PostgreSQL writes into", position);
                continue;
            }
            if (directories.Any(x => x.Path == path))
            {
                diagnostics.Error(DiagnosticCodes.DirectoryTwice, $"directory {path} is listed twice", d.Position);
                continue;
            }
            var owner = d.String("owner") ?? "postgres";
            var modeText = d.String("mode") ?? "0700";
            if (modeText.Length is < 3 or > 4 || !modeText.All(c => c is >= '0' and <= '7'))
            {
                continue; // the schema reports it
            }
            directories.Add(new DesiredDirectory(path, owner, d.String("group") ?? owner, Convert.ToInt32(modeText, 8), position));
        }
        var contexts = new List<DesiredContext>();
        var selinux = spec.Mapping("selinux");
        foreach (var c in selinux.Mappings("fileContexts"))
        {
            if (c.String("path") is not { } path || c.String("type") is not { } type)
            {
                continue;
            }
            if (path.Any(char.IsWhiteSpace))
            {
                // file_contexts is split on white space: semanage refuses such a specification ("can not include spaces").
                diagnostics.Error(DiagnosticCodes.BadFileContextRegex, $"'{path}' holds white space, which a file context specification cannot (use [[:space:]] or \\s in the expression)", c["path"]!.Position);
                continue;
            }
            try
            {
                _ = new System.Text.RegularExpressions.Regex(path, System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException e)
            {
                diagnostics.Error(DiagnosticCodes.BadFileContextRegex, $"'{path}' is not a valid regular expression: {e.Message}", c["path"]!.Position);
                continue;
            }
            var entry = new FileContextEntry(path, c.String("fileType") ?? "all files", c["seuser"] is { IsDefault: false } ? c.String("seuser") : null, type,
                c["range"] is { IsDefault: false } ? c.String("range") : null);
            if (contexts.Any(x => x.Entry.Key == entry.Key))
            {
                diagnostics.Error(DiagnosticCodes.FileContextTwice, $"file context {path} ({entry.FileType}) is listed twice", c.Position);
                continue;
            }
            contexts.Add(new DesiredContext(entry, c.String("state") != "absent"));
        }
        var relabel = selinux.Strings("relabel").Select(t => t.Value.Length > 1 ? t.Value.TrimEnd('/') : t.Value).ToList();
        var section = new SelinuxSection(directories, contexts, relabel, selinux.Bool("required") ?? false, selinux.String("labelsWhenDisabled") == "manage");
        var destinationsDeclared = spec.Mapping("archiving") is not null || spec.Sequence("backups") is not null;
        if (directories.Count == 0 && contexts.Count == 0 && relabel.Count == 0 && selinux is null && !destinationsDeclared)
        {
            return null;
        }
        return new BoundSelinux(section);
    }
}

/// <summary>Everything the selinux module reads: directories (stat), the local file contexts, labels (xattrs) and what the policy expects.</summary>
internal sealed record SelinuxLive(
    IReadOnlyDictionary<string, LiveDirectory> Directories,
    SelinuxPolicy? Policy,
    IReadOnlyList<FileContextEntry> LocalContexts,
    IReadOnlyList<LabelCheck> Labels,
    IReadOnlyList<(string Label, string Path, string Type)> Destinations,
    IReadOnlyList<string> MissingAccounts);

internal sealed class BoundSelinux(SelinuxSection section) : BoundModule<SelinuxLive, SelinuxAction>
{
    public override string Name => SelinuxDiff.Module;

    protected override Task<SelinuxLive> ReadLiveAsync(IHostSession session, CancellationToken cancellationToken)
    {
        var policy = SelinuxPolicy.Read();
        if (policy is null && section.Required)
        {
            throw new PgStateException("spec.selinux.required is true but no SELinux policy is installed (/etc/selinux/config, contexts/files/file_contexts)");
        }
        var directories = ReadDirectories();
        var missing = section.Directories.SelectMany(d => new[] { (d.Owner, true), (d.Group, false) })
            .Where(x => x.Item2 ? Posix.User(x.Item1) is null : Posix.Group(x.Item1) is null)
            .Select(x => (x.Item2 ? "user " : "group ") + x.Item1).Distinct().ToList();
        var localContexts = policy is null ? [] : FileContexts.ParseLocalFile(policy.ReadLocal());
        List<LabelCheck> labels = [];
        List<(string, string, string)> destinations = [];
        // Labels (and what the destinations would get) only matter where SELinux enforces them or they are
        // managed anyway; loading the policy's label database costs ~30 ms a plan, so a disabled host skips it.
        if (policy is not null && (policy.Enabled || section.ManageLabelsWhenDisabled))
        {
            using var lookup = SelinuxLabels.Open(policy.FileContextsPath);
            labels = ReadLabels(directories, lookup);
            destinations = DestinationTypes(session.Facts, lookup);
        }
        return Task.FromResult(new SelinuxLive(directories, policy, localContexts, labels, destinations, missing));
    }

    /// <summary>The label each destination will get: from a desired file context, else from the policy as it is.</summary>
    private List<(string Label, string Path, string Type)> DestinationTypes(FactBag facts, SelinuxLabels? lookup)
    {
        var desired = section.Contexts.Where(c => c.Present).Select(c => c.Entry).ToList();
        var result = new List<(string, string, string)>();
        foreach (var destination in facts.All(HostFacts.StorageDestinations))
        {
            var type = FileContexts.DesiredTypeFor(destination.Path, true, desired)
                ?? FileContexts.TypeOf(lookup?.Lookup(destination.Path, 0x4000));
            result.Add((destination.Purpose, destination.Path, type));
        }
        return result;
    }

    private Dictionary<string, LiveDirectory> ReadDirectories()
    {
        var result = new Dictionary<string, LiveDirectory>(StringComparer.Ordinal);
        foreach (var d in section.Directories)
        {
            if (Posix.Stat(HostFiles.ResolveLinks(d.Path)) is not { } stat)
            {
                continue;
            }
            if (stat.Kind != PosixFileKind.Directory)
            {
                throw new PgStateException($"{d.Path} exists but is a {stat.Kind.ToString().ToLowerInvariant()}, not a directory");
            }
            result[d.Path] = new LiveDirectory(d.Path, Posix.UserName(stat.Uid) ?? stat.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Posix.GroupName(stat.Gid) ?? stat.Gid.ToString(System.Globalization.CultureInfo.InvariantCulture), stat.Mode);
        }
        return result;
    }

    /// <summary>Actual (security.selinux) and expected labels of every file under the managed directories and relabel paths.</summary>
    private List<LabelCheck> ReadLabels(Dictionary<string, LiveDirectory> live, SelinuxLabels? lookup)
    {
        var desired = section.Contexts.Where(c => c.Present).Select(c => c.Entry).ToList();
        var roots = section.Directories.Select(d => d.Path).Concat(section.Relabel).Distinct(StringComparer.Ordinal).ToList();
        var checks = new List<LabelCheck>();
        foreach (var root in roots)
        {
            if (!live.ContainsKey(root) && Posix.Stat(root) is null)
            {
                checks.Add(new LabelCheck(root, root, "(not created yet)", FileContexts.DesiredTypeFor(root, true, desired) ?? FileContexts.TypeOf(lookup?.Lookup(root, 0x4000))));
                continue;
            }
            foreach (var (path, isDirectory) in Walk(root))
            {
                var actual = FileContexts.TypeOf(Posix.SelinuxLabel(path));
                // The manifest's own rules answer first (they may not be in the policy yet); the policy answers the rest.
                var expected = FileContexts.DesiredTypeFor(path, isDirectory, desired) ?? FileContexts.TypeOf(lookup?.Lookup(path, isDirectory ? 0x4000 : 0x8000));
                checks.Add(new LabelCheck(root, path, actual, expected));
            }
        }
        return checks;
    }

    /// <summary>The root and everything under it, without following symlinks (as restorecon -R does).</summary>
    private static IEnumerable<(string Path, bool IsDirectory)> Walk(string root)
    {
        var rootStat = Posix.Stat(root, followLinks: false);
        yield return (root, rootStat?.Kind == PosixFileKind.Directory);
        if (rootStat?.Kind != PosixFileKind.Directory)
        {
            yield break;
        }
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true, ReturnSpecialDirectories = false };
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos("*", options))
        {
            yield return (entry.FullName, entry is DirectoryInfo && entry.LinkTarget is null);
        }
    }

    public override void Diff(SelinuxLive live, Diff<SelinuxAction> diff) => SelinuxDiff.Diff(section, live, diff);

    public override string Digest(SelinuxLive live) =>
        string.Join(';', live.Directories.Values.OrderBy(v => v.Path, StringComparer.Ordinal).Select(v => $"{v.Path}={v.Owner}:{v.Group}:{v.Mode}"))
        + "|" + string.Join(';', live.LocalContexts.Select(c => $"{c.Path}/{c.FileType}={c.Context}"))
        + "|" + string.Join(';', live.Labels.Select(l => $"{l.Path}={l.Actual}"));

    protected override async Task<string?> ApplyAsync(IHostSession session, PlannedChange<SelinuxAction> change, CancellationToken cancellationToken)
    {
        var processes = session.Processes;
        switch (change.Payload)
        {
            case EnsureDirectory ensure:
                var d = ensure.Desired;
                var done = new List<string>();
                try
                {
                    var user = Posix.User(d.Owner) ?? throw new PgStateException($"no user '{d.Owner}' on this host");
                    var group = Posix.Group(d.Group) ?? throw new PgStateException($"no group '{d.Group}' on this host");
                    // Links root made are followed, another user's are an error; then the directory is opened by walking that
                    // path without following any link (made where missing), and owner and mode go on what was opened.
                    var target = HostFiles.ResolveLinks(d.Path);
                    using (var directory = Posix.OpenDirectoryNoLinks(target, create: ensure.Create, mode: d.Mode))
                    {
                        if (ensure.Create)
                        {
                            done.Add($"created {d.Path}");
                        }
                        Posix.SetOwnerAndMode(directory, user.Uid, group, d.Mode);
                    }
                    done.Add($"chown {d.Owner}:{d.Group}");
                    return null;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or PgStateException && done.Count > 0)
                {
                    throw new PgStateException($"{e.Message} (done before the failure: {string.Join(", ", done)})");
                }
            case SemanageFcontext semanage:
                var entry = semanage.Entry;
                List<string> args = ["fcontext", semanage.Verb, "-f", FileContexts.Letter(entry.FileType)];
                if (semanage.Verb != "-d")
                {
                    args.AddRange(["-t", entry.Type]);
                    if (entry.SeUser is not null)
                    {
                        args.AddRange(["-s", entry.SeUser]);
                    }
                    if (entry.Range is not null)
                    {
                        args.AddRange(["-r", entry.Range]);
                    }
                }
                args.Add("--");
                args.Add(entry.Path); // the regular expression, as one argument: no shell ever sees it
                await processes.RunAsync("semanage", args, TimeSpan.FromMinutes(3), cancellationToken: cancellationToken);
                return null;
            case Relabel relabel:
                var policy = SelinuxPolicy.Read() ?? throw new PgStateException("no SELinux policy installed");
                var result = policy.Enabled
                    ? await processes.RunAsync("restorecon", ["-R", "-v", "--", relabel.Root], TimeSpan.FromMinutes(10), cancellationToken: cancellationToken)
                    : await processes.RunAsync("setfiles", ["-F", "-v", policy.FileContextsPath, relabel.Root], TimeSpan.FromMinutes(10), cancellationToken: cancellationToken);
                var count = result.StandardOutput.Split('\n').Count(l => l.StartsWith("Relabeled", StringComparison.Ordinal));
                return $"{count} file(s) relabelled under {relabel.Root} ({(policy.Enabled ? "restorecon" : "setfiles -F, SELinux disabled")})";
            default:
                throw new InvalidOperationException("unknown selinux change");
        }
    }
}

/// <summary>The installed SELinux policy, read from files (no process): /etc/selinux/config and selinuxfs.</summary>
public sealed record SelinuxPolicy(string Name, string FileContextsPath, bool Enabled)
{
    public static SelinuxPolicy? Read(string root = "/etc/selinux")
    {
        var config = Path.Combine(root, "config");
        if (!File.Exists(config))
        {
            return null;
        }
        var type = File.ReadAllLines(config).Select(l => l.Trim()).Where(l => l.StartsWith("SELINUXTYPE=", StringComparison.Ordinal))
            .Select(l => l["SELINUXTYPE=".Length..].Trim()).LastOrDefault();
        if (string.IsNullOrEmpty(type) || type.Contains('/', StringComparison.Ordinal))
        {
            return null;
        }
        var fileContexts = Path.Combine(root, type, "contexts", "files", "file_contexts");
        // /sys/fs/selinux/enforce exists only while SELinux is enabled (what getenforce reads).
        return File.Exists(fileContexts) ? new SelinuxPolicy(type, fileContexts, File.Exists("/sys/fs/selinux/enforce")) : null;
    }

    public string ReadLocal() => File.Exists(FileContextsPath + ".local") ? File.ReadAllText(FileContextsPath + ".local") : "";
}

public sealed record LabelCheck(string Root, string Path, string Actual, string Expected);

/// <summary>The pure part: desired vs live directories, file contexts and labels.</summary>
internal static class SelinuxDiff
{
    public const string Module = "selinux";

    public static void Diff(SelinuxSection section, SelinuxLive live, Diff<SelinuxAction> diff)
    {
        string Show(string owner, string group, int mode) => $"{owner}:{group} {Convert.ToString(mode, 8).PadLeft(4, '0')}";
        foreach (var account in live.MissingAccounts)
        {
            diff.Warn(null, $"the {account} named in spec.directories does not exist on this host: apply will fail until it does");
        }
        foreach (var d in section.Directories)
        {
            var address = $"directories[\"{d.Path}\"]";
            if (!live.Directories.TryGetValue(d.Path, out var l))
            {
                diff.Add(address, ChangeAction.Create, null, Show(d.Owner, d.Group, d.Mode), Activation.None, new EnsureDirectory(d, true));
            }
            else if (l.Owner != d.Owner || l.Group != d.Group || l.Mode != d.Mode)
            {
                var what = new List<string>();
                if (l.Owner != d.Owner || l.Group != d.Group)
                {
                    what.Add("chown");
                }
                if (l.Mode != d.Mode)
                {
                    what.Add("chmod");
                }
                diff.Add(address, ChangeAction.Update, Show(l.Owner, l.Group, l.Mode), Show(d.Owner, d.Group, d.Mode), Activation.None, new EnsureDirectory(d, false), string.Join(" + ", what));
            }
        }
        if (live.Policy is null)
        {
            if (section.Contexts.Count > 0 || section.Directories.Count > 0 || section.Relabel.Count > 0)
            {
                diff.Warn(null, "not applicable: no SELinux policy is installed, so file contexts and labels are not managed (set spec.selinux.required: true to make this an error)");
            }
            return;
        }
        foreach (var c in section.Contexts)
        {
            var address = $"selinux.fcontext[\"{c.Entry.Path}\"]" + (c.Entry.FileType == "all files" ? "" : $"[{c.Entry.FileType}]");
            var existing = live.LocalContexts.FirstOrDefault(x => x.Key == c.Entry.Key);
            if (!c.Present)
            {
                if (existing is not null)
                {
                    diff.Add(address, ChangeAction.Delete, existing.Context, null, Activation.None, new SemanageFcontext("-d", existing), "semanage fcontext -d");
                }
                continue;
            }
            if (existing is null)
            {
                diff.Add(address, ChangeAction.Create, null, c.Entry.Context, Activation.None, new SemanageFcontext("-a", c.Entry), "semanage fcontext -a");
            }
            else if (existing.Type != c.Entry.Type || (c.Entry.SeUser is not null && existing.SeUser != c.Entry.SeUser) || (c.Entry.Range is not null && existing.Range != c.Entry.Range))
            {
                diff.Add(address, ChangeAction.Update, existing.Context, c.Entry.Context, Activation.None, new SemanageFcontext("-m", c.Entry), "semanage fcontext -m");
            }
        }
        // Said where the manifest asks for SELinux (file contexts, relabelling): a host that only declares directories is not told about SELinux.
        if (!live.Policy.Enabled && !section.ManageLabelsWhenDisabled && (section.Contexts.Count > 0 || section.Relabel.Count > 0))
        {
            diff.Warn(null, "SELinux is disabled here, so files get no labels and pgstate does not count them as drift; file contexts are still managed, " +
                "and once SELinux is enabled the next apply restores the labels (set spec.selinux.labelsWhenDisabled: manage to write them now with setfiles -F)");
        }
        foreach (var group in live.Labels.GroupBy(l => l.Root))
        {
            // <<none>>: the policy assigns nothing there, restorecon leaves such files alone.
            var wrong = group.Where(l => l.Actual != l.Expected && l.Expected is not ("(unlabelled)" or "<<none>>")).ToList();
            if (wrong.Count == 0)
            {
                continue;
            }
            var created = wrong.All(w => w.Actual == "(not created yet)");
            var transitions = string.Join(", ", wrong.GroupBy(w => (w.Actual, w.Expected)).Select(t => $"{t.Count()} × {t.Key.Actual} → {t.Key.Expected}"));
            var examples = string.Join(", ", wrong.Take(3).Select(w => w.Path)) + (wrong.Count > 3 ? ", …" : "");
            diff.Add($"selinux.labels[\"{group.Key}\"]", ChangeAction.Update,
                created ? "(directory not created yet)" : $"{wrong.Count} file(s) mislabelled: {transitions}",
                wrong[0].Expected, Activation.None, new Relabel(group.Key),
                created ? "labelled after it is created" : $"e.g. {examples}");
        }
        // Read only where SELinux enforces labels or they are managed anyway: elsewhere the warning is hypothetical noise.
        foreach (var (label, path, type) in live.Destinations)
        {
            if (!PostgresLabels.Writable.Contains(type))
            {
                var given = type == "<<none>>" ? "no label of its own from the policy" : $"the label {type} from the policy";
                diff.Warn(null,
                    $"the {label} {path} gets {given}, which postgresql_t cannot write: writes there will fail with \"Permission denied\" under enforcing SELinux. " +
                    $"Add to spec.selinux.fileContexts: {{path: \"{path}(/.*)?\", type: postgresql_db_t}} (and list {path} in spec.directories)");
            }
        }
    }
}
