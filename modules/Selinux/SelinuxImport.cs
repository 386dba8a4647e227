using System.Globalization;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Selinux;

/// <summary>
/// pgstate import for spec.directories and spec.selinux: the archive and backup destinations that
/// other modules' imports found (owner, group, mode as they are) and the local file-context
/// customisations of the installed policy (file_contexts.local, as the plan reads them).
/// </summary>
public sealed partial class SelinuxModule : IImportingModule
{
    public IReadOnlyList<string> ImportSections => ["directories", "selinux"];

    // After archiving and backups: their destinations are facts by then.
    public int ImportOrder => 90;

    public Task<IReadOnlyList<ImportedField>> ImportAsync(ImportContext context, CancellationToken cancellationToken)
    {
        var fields = new List<ImportedField>();
        if (context.Wants("directories"))
        {
            var items = new List<YamlOutItem>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var destination in context.Facts.All(HostFacts.StorageDestinations))
            {
                var path = destination.Path.Length > 1 ? destination.Path.TrimEnd('/') : destination.Path;
                if (!seen.Add(path))
                {
                    continue;
                }
                if (ProtectedDirectories.Contains(path, StringComparer.Ordinal) || path.Split('/').Contains("..") || TextSafety.HasControl(path))
                {
                    context.Note($"directories: the {destination.Purpose} {TextSafety.Printable(path)} is not a directory pgstate manages: not imported");
                    continue;
                }
                if (Posix.Stat(path) is not { Kind: PosixFileKind.Directory } stat)
                {
                    context.Note($"directories: the {destination.Purpose} {path} does not exist (or is not a directory): not imported");
                    continue;
                }
                var owner = Posix.UserName(stat.Uid) ?? stat.Uid.ToString(CultureInfo.InvariantCulture);
                var group = Posix.GroupName(stat.Gid) ?? stat.Gid.ToString(CultureInfo.InvariantCulture);
                items.Add(new YamlOutItem(new YamlOutMapping(
                [
                    new("path", YamlOut.String(path)), new("owner", YamlOut.String(owner)), new("group", YamlOut.String(group)),
                    new("mode", YamlOut.String("0" + Convert.ToString(stat.Mode & 0xFFF, 8).PadLeft(3, '0'))),
                ], Flow: true), After: destination.Purpose));
            }
            if (items.Count > 0)
            {
                fields.Add(new ImportedField(30, new YamlOutEntry("directories", new YamlOutSequence(items))));
            }
        }
        if (context.Wants("selinux") && SelinuxPolicy.Read() is { } policy)
        {
            var items = new List<YamlOutItem>();
            foreach (var entry in FileContexts.ParseLocalFile(policy.ReadLocal()).DistinctBy(e => e.Key))
            {
                if (TextSafety.HasControl(entry.Path) || entry.Path.Length < 2 || !System.Text.RegularExpressions.Regex.IsMatch(entry.Type, "^[a-z0-9_]+_t$") || !IsRegex(entry.Path)
                    || (entry.SeUser is { } u && !System.Text.RegularExpressions.Regex.IsMatch(u, "^[a-z0-9_]+_u$")))
                {
                    context.Note($"selinux: the file context {TextSafety.Printable(entry.Path)} ({entry.Type}) cannot be written in a manifest: not imported");
                    continue;
                }
                var entries = new List<YamlOutEntry> { new("path", YamlOut.String(entry.Path)), new("type", YamlOut.String(entry.Type)) };
                if (entry.FileType != "all files")
                {
                    entries.Add(new("fileType", YamlOut.String(entry.FileType)));
                }
                if (entry.SeUser is { } seuser && seuser != "system_u")
                {
                    entries.Add(new("seuser", YamlOut.String(seuser)));
                }
                if (entry.Range is { } range && range != "s0")
                {
                    entries.Add(new("range", YamlOut.String(range)));
                }
                items.Add(new YamlOutItem(new YamlOutMapping(entries, Flow: true)));
            }
            if (items.Count > 0)
            {
                fields.Add(new ImportedField(40, new YamlOutEntry("selinux", new YamlOutMapping([new("fileContexts", new YamlOutSequence(items))]),
                    Above: [$"the policy's local file contexts ({policy.FileContextsPath}.local); entries not listed are left alone"])));
            }
        }
        return Task.FromResult<IReadOnlyList<ImportedField>>(fields);
    }

    /// <summary>The manifest checks a path expression the way Bind does: one .NET cannot compile is not written.</summary>
    private static bool IsRegex(string path)
    {
        try
        {
            _ = new System.Text.RegularExpressions.Regex(path, System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromSeconds(1));
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
