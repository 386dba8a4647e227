using Npgsql;

namespace PgState.Engine.Host;

/// <summary>The rows of one declared catalog query, available once the engine has run the batch.</summary>
public sealed class CatalogQuery<T>
{
    private readonly List<T> _rows = [];

    internal bool Executed { get; set; }

    public IReadOnlyList<T> Rows => Executed ? _rows : throw new InvalidOperationException("the catalog batch has not run yet");

    internal void Add(T row) => _rows.Add(row);

    internal void Clear() => _rows.Clear();
}

/// <summary>
/// Catalog queries that modules declare before a plan; the engine sends all of them in one
/// NpgsqlBatch (one round trip) and hands each its rows. Parameters are bind parameters ($1 …).
/// </summary>
public sealed class CatalogReads
{
    private readonly List<(string Sql, IReadOnlyList<object?> Parameters, Action<NpgsqlDataReader> Read, Action Reset, Action Done)> _queries = [];

    public int Count => _queries.Count;

    public CatalogQuery<T> Add<T>(string sql, Func<NpgsqlDataReader, T> row) => Add(sql, row, []);

    /// <summary>A query with bind parameters $1, $2 … (an array is one parameter).</summary>
    public CatalogQuery<T> Add<T>(string sql, Func<NpgsqlDataReader, T> row, IReadOnlyList<object?> parameters)
    {
        var query = new CatalogQuery<T>();
        _queries.Add((sql, parameters, r => query.Add(row(r)), query.Clear, () => query.Executed = true));
        return query;
    }

    public async Task ExecuteAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        if (_queries.Count == 0)
        {
            return;
        }
        await using var batch = new NpgsqlBatch(connection);
        foreach (var (sql, parameters, _, reset, _) in _queries)
        {
            reset();
            var command = new NpgsqlBatchCommand(sql);
            foreach (var p in parameters)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
            }
            batch.BatchCommands.Add(command);
        }
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        for (var i = 0; i < _queries.Count; i++)
        {
            if (i > 0 && !await reader.NextResultAsync(cancellationToken))
            {
                throw new InvalidOperationException("the catalog batch returned fewer results than queries");
            }
            while (await reader.ReadAsync(cancellationToken))
            {
                _queries[i].Read(reader);
            }
            _queries[i].Done();
        }
    }
}
