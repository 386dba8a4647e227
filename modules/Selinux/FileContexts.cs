namespace PgState.Modules.Selinux;

/// <summary>A file context rule: a path regular expression, the kind of file it applies to, and a context.</summary>
public sealed record FileContextEntry(string Path, string FileType, string? SeUser, string Type, string? Range)
{
    public (string, string) Key => (Path, FileType);

    public string Context => $"{SeUser ?? "system_u"}:object_r:{Type}:{Range ?? "s0"}";
}

/// <summary>Reads the local file-context customisations, from file_contexts.local or from semanage's listing.</summary>
public static class FileContexts
{
    /// <summary>semanage -f letters, file_contexts flags and listing names, per file type.</summary>
    public static readonly (string Name, string Letter, string Flag)[] FileTypes =
    [
        ("all files", "a", ""), ("regular file", "f", "--"), ("directory", "d", "-d"), ("character device", "c", "-c"),
        ("block device", "b", "-b"), ("socket", "s", "-s"), ("symbolic link", "l", "-l"), ("named pipe", "p", "-p"),
    ];

    public static string Letter(string fileType) => FileTypes.First(t => t.Name == fileType).Letter;

    /// <summary>Parses file_contexts.local: "PATH [FLAG] CONTEXT" per line.</summary>
    public static List<FileContextEntry> ParseLocalFile(string text)
    {
        var entries = new List<FileContextEntry>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            var fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2)
            {
                continue;
            }
            var flag = fields.Length >= 3 ? fields[1] : "";
            var fileType = FileTypes.FirstOrDefault(t => t.Flag == flag).Name ?? "all files";
            entries.Add(FromContext(fields[0], fileType, fields[^1]));
        }
        return entries;
    }

    /// <summary>Parses `semanage fcontext -l -C`: "PATH  FILE TYPE  CONTEXT" in columns.</summary>
    public static List<FileContextEntry> ParseSemanageListing(string text)
    {
        var entries = new List<FileContextEntry>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd();
            if (line.Length == 0 || line.StartsWith("SELinux fcontext", StringComparison.Ordinal))
            {
                continue;
            }
            // Columns are padded, but a long path is followed by a single space: parse from the right.
            var cut = line.LastIndexOf(' ');
            if (cut < 0)
            {
                continue;
            }
            var context = line[(cut + 1)..];
            var rest = line[..cut].TrimEnd();
            foreach (var (name, _, _) in FileTypes)
            {
                if (rest.EndsWith(" " + name, StringComparison.Ordinal))
                {
                    entries.Add(FromContext(rest[..^name.Length].Trim(), name, context));
                    break;
                }
            }
        }
        return entries;
    }

    private static FileContextEntry FromContext(string path, string fileType, string context)
    {
        var parts = context.Split(':');
        return parts.Length >= 3
            ? new FileContextEntry(path, fileType, parts[0], parts[2], parts.Length > 3 ? string.Join(':', parts[3..]) : null)
            : new FileContextEntry(path, fileType, null, context, null);
    }

    /// <summary>The type a path gets from desired entries (anchored full match, last one wins), else null.</summary>
    public static string? DesiredTypeFor(string path, bool isDirectory, IEnumerable<FileContextEntry> entries)
    {
        string? type = null;
        foreach (var e in entries)
        {
            if (e.FileType is not ("all files" or "directory" or "regular file")
                || (e.FileType == "directory" && !isDirectory) || (e.FileType == "regular file" && isDirectory))
            {
                continue;
            }
            try
            {
                if (System.Text.RegularExpressions.Regex.IsMatch(path, "^(?:" + e.Path + ")$"))
                {
                    type = e.Type;
                }
            }
            catch (ArgumentException)
            {
            }
        }
        return type;
    }

    public static string TypeOf(string? context) =>
        context == "<<none>>" ? "<<none>>" :
        string.IsNullOrEmpty(context) || context == "?" ? "(unlabelled)" : context.Split(':') is { Length: >= 3 } p ? p[2] : context;
}
