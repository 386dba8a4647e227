using System.Globalization;
using Newtonsoft.Json.Linq;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Selinux;

public sealed record DesiredDirectory(string Path, string Owner, string Group, int Mode);

public sealed record DesiredContext(FileContextEntry Entry, bool Present);

/// <summary>A directory as it is: null fields when it does not exist.</summary>
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
public sealed class SelinuxModule : IModule
{
    public string Name => SelinuxDiff.Module;

    // Before archiving: the archive directory and its label exist before archive_command points at it.
    public int Order => 20;

    public IBoundModule? Bind(HostManifest host, DiagnosticBag diagnostics)
    {
        var spec = host.Document.Spec;
        var directories = new List<DesiredDirectory>();
        foreach (var node in spec["directories"] as JArray ?? [])
        {
            var d = (JObject)node;
            var owner = (string?)d["owner"] ?? "postgres";
            var path = ((string)d["path"]!).TrimEnd('/');
            if (directories.Any(x => x.Path == path))
            {
                diagnostics.Error("PGS301", $"directory {path} is listed twice", d.PositionOf());
                continue;
            }
            directories.Add(new DesiredDirectory(path, owner, (string?)d["group"] ?? owner, Convert.ToInt32((string?)d["mode"] ?? "0700", 8)));
        }
        var contexts = new List<DesiredContext>();
        var selinux = spec["selinux"] as JObject;
        foreach (var node in selinux?["fileContexts"] as JArray ?? [])
        {
            var c = (JObject)node;
            var path = (string)c["path"]!;
            try
            {
                _ = new System.Text.RegularExpressions.Regex(path);
            }
            catch (ArgumentException e)
            {
                diagnostics.Error("PGS302", $"'{path}' is not a valid regular expression: {e.Message}", c["path"].PositionOf());
                continue;
            }
            var entry = new FileContextEntry(path, (string?)c["fileType"] ?? "all files", (string?)c["seuser"], (string)c["type"]!, (string?)c["range"]);
            if (contexts.Any(x => x.Entry.Key == entry.Key))
            {
                diagnostics.Error("PGS303", $"file context {path} ({entry.FileType}) is listed twice", c.PositionOf());
                continue;
            }
            contexts.Add(new DesiredContext(entry, (string?)c["state"] != "absent"));
        }
        var relabel = (selinux?["relabel"] as JArray ?? []).Select(t => ((string)t!).TrimEnd('/')).ToList();
        var destinations = new List<(string Label, string Path)>();
        if ((string?)spec["archiving"]?["destination"] is { } archive)
        {
            destinations.Add(("archive destination", archive.TrimEnd('/')));
        }
        foreach (var backup in spec["backups"] as JArray ?? [])
        {
            destinations.Add(($"backup destination of '{backup["name"]}'", ((string)backup["destination"]!).TrimEnd('/')));
        }
        if (directories.Count == 0 && contexts.Count == 0 && relabel.Count == 0 && selinux is null && destinations.Count == 0)
        {
            return null;
        }
        return new BoundSelinux(directories, contexts, relabel, destinations, (bool?)selinux?["required"] ?? false);
    }
}

internal sealed class BoundSelinux(
    IReadOnlyList<DesiredDirectory> directories,
    IReadOnlyList<DesiredContext> contexts,
    IReadOnlyList<string> relabel,
    IReadOnlyList<(string Label, string Path)> destinations,
    bool required) : IBoundModule
{
    public string Name => SelinuxDiff.Module;

    public Task ValidateLiveAsync(IHostSession host, DiagnosticBag diagnostics, CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task<ModuleDiff> PlanAsync(IHostSession host, CancellationToken cancellationToken)
    {
        var policy = SelinuxPolicy.Read();
        if (policy is null && required)
        {
            throw new PgStateException("spec.selinux.required is true but no SELinux policy is installed (/etc/selinux/config, contexts/files/file_contexts)");
        }
        var live = await ReadDirectoriesAsync(host.Processes, [.. directories.Select(d => d.Path)], cancellationToken);
        var localContexts = policy is null ? [] : FileContexts.ParseLocalFile(policy.ReadLocal());
        var labels = policy is null ? [] : await ReadLabelsAsync(host.Processes, live, cancellationToken);
        var destinationTypes = policy is null ? [] : await DestinationTypesAsync(host.Processes, cancellationToken);
        return SelinuxDiff.Diff(directories, live, policy is not null, contexts, localContexts, labels, destinationTypes);
    }

    /// <summary>The label each destination will get: from a desired file context, else from the policy as it is.</summary>
    private async Task<List<(string Label, string Path, string Type)>> DestinationTypesAsync(ProcessRunner processes, CancellationToken cancellationToken)
    {
        var desired = contexts.Where(c => c.Present).Select(c => c.Entry).ToList();
        var result = new List<(string, string, string)>();
        var unknown = destinations.Where(d => FileContexts.DesiredTypeFor(d.Path, true, desired) is null).ToList();
        var expected = await MatchPathConAsync(processes, [.. unknown.Select(d => d.Path)], cancellationToken);
        foreach (var (label, path) in destinations)
        {
            result.Add((label, path, FileContexts.DesiredTypeFor(path, true, desired) ?? FileContexts.TypeOf(expected.GetValueOrDefault(path))));
        }
        return result;
    }

    private static async Task<Dictionary<string, LiveDirectory>> ReadDirectoriesAsync(ProcessRunner processes, IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, LiveDirectory>(StringComparer.Ordinal);
        if (paths.Count == 0)
        {
            return result;
        }
        // One stat for every directory; a missing one only adds a line to stderr.
        var stat = await processes.RunAsync("stat", ["-c", "%n\t%U\t%G\t%a\t%F", "--", .. paths], check: false, cancellationToken: cancellationToken);
        foreach (var line in stat.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split('\t');
            if (f.Length == 5)
            {
                if (f[4] != "directory")
                {
                    throw new PgStateException($"{f[0]} exists but is a {f[4]}, not a directory");
                }
                result[f[0]] = new LiveDirectory(f[0], f[1], f[2], Convert.ToInt32(f[3], 8));
            }
        }
        return result;
    }

    /// <summary>Actual and expected labels of every file under the managed directories and relabel paths.</summary>
    private async Task<List<LabelCheck>> ReadLabelsAsync(ProcessRunner processes, Dictionary<string, LiveDirectory> live, CancellationToken cancellationToken)
    {
        var desired = contexts.Where(c => c.Present).Select(c => c.Entry).ToList();
        var roots = directories.Select(d => d.Path).Concat(relabel).Distinct(StringComparer.Ordinal).ToList();
        var files = new List<(string Root, string Path, bool IsDirectory, string Actual)>();
        foreach (var root in roots)
        {
            if (!live.ContainsKey(root) && !Directory.Exists(root) && !File.Exists(root))
            {
                files.Add((root, root, true, "(not created yet)"));
                continue;
            }
            var found = await processes.RunAsync("find", [root, "-printf", "%p\t%y\t%Z\n"], check: false, cancellationToken: cancellationToken);
            foreach (var line in found.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var f = line.Split('\t');
                if (f.Length == 3)
                {
                    files.Add((root, f[0], f[1] == "d", FileContexts.TypeOf(f[2])));
                }
            }
        }
        // The manifest's own rules answer first (they may not be in the policy yet); matchpathcon the rest.
        var fromManifest = files.Select(f => FileContexts.DesiredTypeFor(f.Path, f.IsDirectory, desired)).ToList();
        var fromPolicy = await MatchPathConAsync(processes, [.. files.Where((_, i) => fromManifest[i] is null).Select(f => f.Path)], cancellationToken);
        return [.. files.Select((f, i) => new LabelCheck(f.Root, f.Path, f.Actual,
            fromManifest[i] ?? FileContexts.TypeOf(fromPolicy.GetValueOrDefault(f.Path))))];
    }

    /// <summary>What the installed policy says each path should be labelled (matchpathcon, batched).</summary>
    private static async Task<Dictionary<string, string>> MatchPathConAsync(ProcessRunner processes, IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var chunk in paths.Chunk(500))
        {
            var output = await processes.RunAsync("matchpathcon", ["-n", .. chunk], check: false, cancellationToken: cancellationToken);
            var lines = output.StandardOutput.Split('\n');
            for (var i = 0; i < chunk.Length && i < lines.Length; i++)
            {
                result[chunk[i]] = lines[i].Trim();
            }
        }
        return result;
    }

    public async Task<string?> ApplyAsync(IHostSession host, ResourceChange change, CancellationToken cancellationToken)
    {
        var processes = host.Processes;
        switch (change.Payload)
        {
            case EnsureDirectory ensure:
                var d = ensure.Desired;
                if (ensure.Create)
                {
                    Directory.CreateDirectory(d.Path);
                }
                await processes.RunAsync("chown", [$"{d.Owner}:{d.Group}", "--", d.Path], cancellationToken: cancellationToken);
                File.SetUnixFileMode(d.Path, (UnixFileMode)d.Mode);
                return null;
            case SemanageFcontext semanage:
                var e = semanage.Entry;
                List<string> args = ["fcontext", semanage.Verb, "-f", FileContexts.Letter(e.FileType)];
                if (semanage.Verb != "-d")
                {
                    args.AddRange(["-t", e.Type]);
                    if (e.SeUser is not null)
                    {
                        args.AddRange(["-s", e.SeUser]);
                    }
                    if (e.Range is not null)
                    {
                        args.AddRange(["-r", e.Range]);
                    }
                }
                args.Add(e.Path); // the regular expression, as one argument: no shell ever sees it
                await processes.RunAsync("semanage", args, TimeSpan.FromMinutes(3), cancellationToken: cancellationToken);
                return null;
            case Relabel relabelRoot:
                var policy = SelinuxPolicy.Read() ?? throw new PgStateException("no SELinux policy installed");
                var result = policy.Enabled
                    ? await processes.RunAsync("restorecon", ["-R", "-v", "--", relabelRoot.Root], TimeSpan.FromMinutes(10), cancellationToken: cancellationToken)
                    : await processes.RunAsync("setfiles", ["-F", "-v", policy.FileContextsPath, relabelRoot.Root], TimeSpan.FromMinutes(10), cancellationToken: cancellationToken);
                var count = result.StandardOutput.Split('\n').Count(l => l.StartsWith("Relabeled", StringComparison.Ordinal));
                return $"{count} file(s) relabelled under {relabelRoot.Root} ({(policy.Enabled ? "restorecon" : "setfiles -F, SELinux disabled")})";
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
        if (string.IsNullOrEmpty(type))
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
public static class SelinuxDiff
{
    public const string Module = "selinux";

    public static ModuleDiff Diff(
        IReadOnlyList<DesiredDirectory> directories,
        IReadOnlyDictionary<string, LiveDirectory> live,
        bool policyPresent,
        IReadOnlyList<DesiredContext> contexts,
        IReadOnlyList<FileContextEntry> localContexts,
        IReadOnlyList<LabelCheck> labels,
        IReadOnlyList<(string Label, string Path, string Type)> destinations)
    {
        var changes = new List<ResourceChange>();
        var warnings = new List<PlanWarning>();
        string Show(string owner, string group, int mode) => $"{owner}:{group} {Convert.ToString(mode, 8).PadLeft(4, '0')}";
        foreach (var d in directories)
        {
            var address = $"directories[\"{d.Path}\"]";
            if (!live.TryGetValue(d.Path, out var l))
            {
                changes.Add(new ResourceChange(address, Module, ChangeAction.Create, null, Show(d.Owner, d.Group, d.Mode), Activation.None) { Payload = new EnsureDirectory(d, true) });
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
                changes.Add(new ResourceChange(address, Module, ChangeAction.Update, Show(l.Owner, l.Group, l.Mode), Show(d.Owner, d.Group, d.Mode), Activation.None, string.Join(" + ", what)) { Payload = new EnsureDirectory(d, false) });
            }
        }
        if (!policyPresent)
        {
            if (contexts.Count > 0 || labels.Count > 0)
            {
                warnings.Add(new PlanWarning(null, Module, "not applicable: no SELinux policy is installed, so file contexts and labels are not managed (set spec.selinux.required: true to make this an error)"));
            }
            return new ModuleDiff(changes, [], warnings, Digest(live, localContexts, labels));
        }
        foreach (var c in contexts)
        {
            var address = $"selinux.fcontext[\"{c.Entry.Path}\"]" + (c.Entry.FileType == "all files" ? "" : $"[{c.Entry.FileType}]");
            var existing = localContexts.FirstOrDefault(x => x.Key == c.Entry.Key);
            if (!c.Present)
            {
                if (existing is not null)
                {
                    changes.Add(new ResourceChange(address, Module, ChangeAction.Delete, existing.Context, null, Activation.None, "semanage fcontext -d") { Payload = new SemanageFcontext("-d", existing) });
                }
                continue;
            }
            if (existing is null)
            {
                changes.Add(new ResourceChange(address, Module, ChangeAction.Create, null, c.Entry.Context, Activation.None, "semanage fcontext -a") { Payload = new SemanageFcontext("-a", c.Entry) });
            }
            else if (existing.Type != c.Entry.Type || (c.Entry.SeUser is not null && existing.SeUser != c.Entry.SeUser) || (c.Entry.Range is not null && existing.Range != c.Entry.Range))
            {
                changes.Add(new ResourceChange(address, Module, ChangeAction.Update, existing.Context, c.Entry.Context, Activation.None, "semanage fcontext -m") { Payload = new SemanageFcontext("-m", c.Entry) });
            }
        }
        foreach (var group in labels.GroupBy(l => l.Root))
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
            changes.Add(new ResourceChange($"selinux.labels[\"{group.Key}\"]", Module, ChangeAction.Update,
                created ? "(directory not created yet)" : $"{wrong.Count} file(s) mislabelled: {transitions}",
                wrong[0].Expected, Activation.None,
                created ? "labelled after it is created" : $"e.g. {examples}")
            { Payload = new Relabel(group.Key) });
        }
        foreach (var (label, path, type) in destinations)
        {
            if (!PostgresLabels.Writable.Contains(type))
            {
                warnings.Add(new PlanWarning(null, Module,
                    $"the {label} {path} gets {(type == "<<none>>" ? "no label of its own from the policy (<<none>>)" : $"the label {type} from the policy")}, which postgresql_t cannot write: writes there will fail with \"Permission denied\" under enforcing SELinux. " +
                    $"Add to spec.selinux.fileContexts: {{path: \"{path}(/.*)?\", type: postgresql_db_t}} (and list {path} in spec.directories)"));
            }
        }
        return new ModuleDiff(changes, [], warnings, Digest(live, localContexts, labels));
    }

    private static string Digest(IReadOnlyDictionary<string, LiveDirectory> live, IReadOnlyList<FileContextEntry> contexts, IReadOnlyList<LabelCheck> labels) =>
        string.Join(';', live.Values.OrderBy(v => v.Path, StringComparer.Ordinal).Select(v => $"{v.Path}={v.Owner}:{v.Group}:{v.Mode}"))
        + "|" + string.Join(';', contexts.Select(c => $"{c.Path}/{c.FileType}={c.Context}"))
        + "|" + string.Join(';', labels.Select(l => $"{l.Path}={l.Actual}"));
}
