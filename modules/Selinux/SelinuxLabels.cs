using System.Runtime.InteropServices;

namespace PgState.Modules.Selinux;

/// <summary>
/// What the installed policy says a path should be labelled, from libselinux's own lookup
/// (selabel_lookup over file_contexts, .homedirs and .local), in-process: the answer matchpathcon
/// gives, without a process per plan. Null where libselinux is not installed.
/// </summary>
internal sealed partial class SelinuxLabels : IDisposable
{
    private const string Library = "libselinux.so.1";
    private const int SelabelCtxFile = 0;
    private const int SelabelOptPath = 3;

    private nint _handle;

    private SelinuxLabels(nint handle)
    {
        _handle = handle;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct SelinuxOpt
    {
        public int Type;
        public nint Value;
    }

    [LibraryImport(Library, SetLastError = true)]
    private static unsafe partial nint selabel_open(uint backend, SelinuxOpt* options, uint count);

    [LibraryImport(Library, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int selabel_lookup(nint handle, nint* context, string key, int mode);

    [LibraryImport(Library)]
    private static partial void selabel_close(nint handle);

    [LibraryImport(Library)]
    private static partial void freecon(nint context);

    /// <summary>Opens the file-contexts backend on the policy's file_contexts (null when libselinux or the policy is missing).</summary>
    public static unsafe SelinuxLabels? Open(string fileContextsPath)
    {
        try
        {
            var path = Marshal.StringToCoTaskMemUTF8(fileContextsPath);
            try
            {
                var option = new SelinuxOpt { Type = SelabelOptPath, Value = path };
                var handle = selabel_open(SelabelCtxFile, &option, 1);
                return handle == 0 ? null : new SelinuxLabels(handle);
            }
            finally
            {
                Marshal.FreeCoTaskMem(path);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The context the policy gives <paramref name="path"/> (file type from its mode bits, 0 for any), or "&lt;&lt;none&gt;&gt;".</summary>
    public unsafe string Lookup(string path, int mode)
    {
        nint context = 0;
        if (selabel_lookup(_handle, &context, path, mode) != 0)
        {
            return "<<none>>";
        }
        try
        {
            return Marshal.PtrToStringUTF8(context) ?? "<<none>>";
        }
        finally
        {
            freecon(context);
        }
    }

    public void Dispose()
    {
        if (_handle != 0)
        {
            selabel_close(_handle);
            _handle = 0;
        }
    }
}

/// <summary>What the policy expects for paths (in-process selabel_lookup, as matchpathcon -n prints them); for tests and import.</summary>
public static class LabelLookup
{
    public static IReadOnlyList<string> Lookup(string fileContextsPath, IEnumerable<string> paths)
    {
        using var labels = SelinuxLabels.Open(fileContextsPath) ?? throw new InvalidOperationException("libselinux is not available");
        return [.. paths.Select(p => labels.Lookup(p, Engine.Host.Posix.Stat(p) is { Kind: Engine.Host.PosixFileKind.Directory } ? 0x4000 : Engine.Host.Posix.Stat(p) is { } ? 0x8000 : 0))];
    }
}
